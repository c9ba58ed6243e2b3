"""Stack configuration: the typed settings a region's stack chooses (declared once, in config.py;
read and checked from those declarations by settings.py), their secure defaults (hardening.py)
and the stack files (files.py). Read by the Pulumi program (through the engine), the offline
plan and the register; it needs neither the Pulumi SDK nor a database."""
