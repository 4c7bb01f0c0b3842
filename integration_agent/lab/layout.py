"""What a lab looks like: the Debian release of each host, the login user, and whether a bastion guards it.

``intagent lab up`` makes the lab match one :class:`Layout`. Hosts whose release or access no longer
matches are re-created from the pristine image; hosts that already match are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import LabError

# Debian releases the lab builds base images for, oldest first.
RELEASES = ("bullseye", "bookworm", "trixie")
DEFAULT_RELEASE = "bookworm"

# The non-root login user every base image has: in group sudo, and sudo asks for its password.
OPS_USER = "ops"
# Lab-only test value, public on purpose: it guards nothing but throwaway hosts on a private bridge.
OPS_PASSWORD = "intagent-lab-ops"
LOGIN_USERS = ("root", OPS_USER)

BASTION_NAME = "bastion"
BASTION_INDEX = 0  # host_address(subnet, 0): the address just before lab1's


def check_releases(releases: Iterable[str]) -> tuple[str, ...]:
    """``releases`` as a tuple, or a LabError naming the first one the lab cannot build."""
    chosen = tuple(releases)
    for release in chosen:
        if release not in RELEASES:
            raise LabError(f"unknown Debian release {release!r} for lab hosts",
                           hint=f"the lab builds {', '.join(RELEASES)}")
    return chosen


@dataclass(frozen=True)
class Layout:
    """The shape ``lab up`` gives the lab (every field optional; the default is today's plain lab)."""

    releases: tuple[str, ...] = (DEFAULT_RELEASE,)
    bastion: bool = False
    login_user: str = "root"
    fleet: bool = False

    def __post_init__(self) -> None:
        if not self.releases:
            raise LabError("a lab layout needs at least one Debian release")
        object.__setattr__(self, "releases", check_releases(self.releases))
        if self.login_user not in LOGIN_USERS:
            raise LabError(f"unknown lab login user {self.login_user!r}", hint=f"choose {' or '.join(LOGIN_USERS)}")

    def release_of(self, index: int) -> str:
        """The release of host ``index`` (1-based): the releases are dealt out round-robin."""
        if index < 1:
            raise LabError(f"lab host numbers start at 1 (got {index})")
        return self.releases[(index - 1) % len(self.releases)]

    @property
    def default_release(self) -> str:
        """The release of lab1, also served at the mirror's top level and used by the bastion."""
        return self.releases[0]
