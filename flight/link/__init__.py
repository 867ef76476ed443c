"""CCSDS space link: space packets, TC/TM transfer frames, SDLS-style authentication, transports."""
