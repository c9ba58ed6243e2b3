"""Pulumi entry point: typed stack config in, one RegionalPlatform and its outputs out."""

from components.config import config_from_pulumi
from components.program import program

program(config_from_pulumi())
