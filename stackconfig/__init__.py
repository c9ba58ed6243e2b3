"""Stack configuration: the typed settings a region's stack chooses, their secure defaults, and
the stack files. Read by the Pulumi program (through the engine), the offline plan and the
register; it needs neither the Pulumi SDK nor a database."""
