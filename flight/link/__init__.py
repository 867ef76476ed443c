"""CCSDS space link: space packets, TC/TM transfer frames, SDLS-style authentication, transports.

Modules, bottom up:

- :mod:`.crc`: CRC-16/CCITT-FALSE, the FECF of both frame types.
- :mod:`.spacepacket`: space packets (133.0-B), the APID table, messages <-> packets.
- :mod:`.tcframe`: TC transfer frames (232.0-B), uplink.
- :mod:`.sdls`: authentication and anti-replay inside TC frames, key files and key slots.
- :mod:`.tmframe`: TM transfer frames (132.0-B), packing packets across frames per virtual channel.
- :mod:`.framesync`: finding frames in a byte stream after the 0x1ACFFC1D sync marker.
- :mod:`.uplink`: the flight side of the uplink; only authenticated commands get through.
- :mod:`.downlink`: prioritised, rate-limited TM output on realtime and playback channels.
- :mod:`.transports`: serial, TCP, UDP and in-memory byte streams that survive a lost peer.
- :mod:`.ground`: the ground's command encoder and telemetry decoder.

Exceptions (all ``ValueError`` subclasses, raised only by encoders and ground-side decoders; the
flight side turns bad input into counters and events)::

    PacketError        spacepacket   malformed packet or data field
    TcFrameError       tcframe       malformed TC frame; TcCrcError for a failed CRC
    TmFrameError       tmframe       malformed TM frame
    SecurityError      sdls          UnknownSpiError, AuthenticationError
    KeyFileError       sdls          bad key file; KeyPermissionError (also PermissionError)
    CounterStoreError  sdls          corrupt anti-replay counter file
"""
