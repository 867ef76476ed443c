"""Ground side: the console that commands the spacecraft and shows its telemetry.

It talks to the flight software only through the link's frames (``flight.link.ground``), the same
bytes that cross the radio. Modules, bottom up:

- :mod:`.records`: what is kept from the downlink (channel values with limit state, events,
  responses) and what was sent.
- :mod:`.station`: :class:`~.station.GroundStation`: send by name (checked against the exported
  dictionary first), poll, decode, wait, log as JSON lines.
- :mod:`.arguments`: typed command arguments from typed text; sequence files (TOML/JSON).
- :mod:`.script`: the script grammar and its parser (everything checked before anything is sent).
- :mod:`.runner`: runs script steps against a station; the first unmet expectation stops it.
- :mod:`.display`: tables and lines for people, ANSI colour optional.
- :mod:`.console`: the interactive console (``fsw ground`` without ``--script``).
"""
