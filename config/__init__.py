"""Settings and declarative mapping data for the relay."""

from config.settings import Secret, Settings, load_settings

__all__ = ["Secret", "Settings", "load_settings"]
