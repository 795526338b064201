"""Testing kit: emulators, fault injection, mock transports, log and metric capture."""
