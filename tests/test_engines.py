"""digitlab.engines: a Ray started here stays on the loopback interface; Ray's absence is told, not crashed on."""

from __future__ import annotations

import ipaddress
import sys

import pytest

from digitlab.engines import RAY_INSTALL, check_engine, check_ray, ray_session
from digitlab.errors import UserError


def test_a_local_ray_listens_on_loopback_only(ray_local) -> None:
    psutil = pytest.importorskip("psutil")
    me = psutil.Process()
    pids = {p.pid for p in [me, *me.children(recursive=True)]}  # the GCS, the raylet and its workers
    listening = [c.laddr for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert listening, "Ray's processes listen on no port: not the Ray this test started?"
    exposed = [a for a in listening if not _loopback(a.ip)]
    assert not exposed, f"a local Ray listens beyond 127.0.0.1: {exposed}"


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # ::ffff:127.0.0.1
    return addr.is_loopback


def test_ray_session_uses_the_callers_ray_and_leaves_it_running(ray_local) -> None:
    with ray_session() as ray:
        assert ray is ray_local and ray.is_initialized()
    assert ray_local.is_initialized()


def test_without_ray_the_install_line_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(UserError) as raised:
        check_ray()
    assert RAY_INSTALL == "pip install 'digitlab[ray]'" and RAY_INSTALL in str(raised.value)
    with pytest.raises(UserError, match="--engine must be one of local, ray"):
        check_engine("spark")
