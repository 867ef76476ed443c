"""Ground side: the console that commands the spacecraft and shows its telemetry."""
