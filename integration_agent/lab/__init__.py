"""Disposable test hosts on this machine: ``Lab(settings.lab).up(3)`` returns an inventory."""

from .lab import HostStatus, Lab, UpReport

__all__ = ["HostStatus", "Lab", "UpReport"]
