"""Issue 22 (review R1): `./osteocds up --secured` keeps its cluster in the repository's run folder
(.run/kafka/up-secured, made with the default umask: 0755). Nothing the secured stack writes there may be read by
another local user: the nodes' configuration holds the super user's SCRAM password (its JAAS line), the secrets
folder every principal's, and the brokers' data patients' records. (The listeners are on the host's loopback, which
other local users reach: that is why the secured mode exists on one machine, devstack/secure.py.)"""

from __future__ import annotations

import stat
from pathlib import Path

from devstack import secure

#: files searched for passwords (what holds one: properties, JAAS lines, the secrets folder)
SMALL_FILE = 1 << 20


def _readable_by_others(root: Path, path: Path) -> bool:
    """Another user (not the owner; as a member of the group, or anyone) can open `path` for reading: every folder
    from `root` down to it lets them through, and the file lets them read."""
    folders = [q for q in path.parents if q == root or root in q.parents]
    mode = path.stat().st_mode
    for read_bit, exec_bit in ((stat.S_IRGRP, stat.S_IXGRP), (stat.S_IROTH, stat.S_IXOTH)):
        if mode & read_bit and all(f.stat().st_mode & exec_bit for f in folders):
            return True
    return False


def test_nothing_the_secured_stack_keeps_is_readable_by_other_local_users(tmp_path: Path) -> None:
    workdir = tmp_path / "up-secured"
    workdir.mkdir()
    workdir.chmod(0o755)  # as `up` finds .run/kafka/up-secured: made by mkdir with the usual umask
    with secure.local_secured(workdir, nodes=1) as s:
        passwords = {
            p.name: p.read_text().strip() for p in (workdir / "secrets").glob("*-password") if p.read_text().strip()
        }
        assert passwords and s.own_env
        files = [p for p in workdir.rglob("*") if p.is_file()]
        # the configuration and secrets are small; the brokers' index files are preallocated (10 MB, sparse, ~300 of
        # them): reading those took 95 s of CI and cannot hold a password
        small = [p for p in files if p.stat().st_size <= SMALL_FILE]
        holding = [p for p in small if any(pw in p.read_text(errors="replace") for pw in passwords.values())]
        # the test means something: passwords are written out (the admin's in each node's configuration)
        assert any(p.name == "server.properties" for p in holding)
        exposed = sorted(str(p.relative_to(workdir)) for p in files if _readable_by_others(workdir, p))
    assert exposed == []
