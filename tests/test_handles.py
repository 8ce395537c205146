"""Handle resolution against real SavedModels, real archives and a real HTTP server."""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

import hubtransfer
from hubtransfer import (
    HandleError,
    HandleUnreachableError,
    UnsafeArchiveError,
    cache_entry_for,
    hub_cache_dir,
    resolve_handle,
)
from hubtransfer.testing import make_tar_gz, serve_directory, tiny_spec


@pytest.fixture
def served(tiny_models: dict[str, Path], tmp_path: Path) -> Path:
    """A folder to serve, holding the tiny feature vector as two archives."""
    folder = tmp_path / "www"
    make_tar_gz(tiny_models["fv"], folder / "fv.tar.gz")
    make_tar_gz(tiny_models["fv"], folder / "nested.tgz", top_level="model_v1")
    return folder


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_local_folder_resolves_to_itself(tiny_models: dict[str, Path]) -> None:
    assert resolve_handle(str(tiny_models["fv"])) == tiny_models["fv"]
    assert resolve_handle(tiny_models["fv"].as_uri()) == tiny_models["fv"]


def test_missing_local_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(HandleError, match="no folder") as caught:
        resolve_handle(str(missing))
    assert str(missing) in str(caught.value)


def test_folder_without_saved_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "variables").mkdir()
    with pytest.raises(HandleError, match=r"saved_model\.pb") as caught:
        resolve_handle(str(tmp_path))
    assert str(tmp_path) in str(caught.value)


def test_archive_over_http_is_fetched_once_then_served_from_cache(
    served: Path, isolated_cache: Path
) -> None:
    with serve_directory(served) as url:
        handle = f"{url}/fv.tar.gz"
        first = resolve_handle(handle)
    assert first == cache_entry_for(handle)
    assert first.parent == hub_cache_dir()
    assert (first / "saved_model.pb").is_file()
    # The server is gone: a second resolve must come from the cache alone.
    assert resolve_handle(handle) == first
    leftovers = [p.name for p in first.parent.iterdir() if p.name.endswith((".tmp", ".stale"))]
    assert leftovers == []


def test_archive_with_top_level_folder_is_flattened(served: Path, isolated_cache: Path) -> None:
    with serve_directory(served) as url:
        path = resolve_handle(f"{url}/nested.tgz")
    assert (path / "saved_model.pb").is_file()
    assert not (path / "model_v1").exists()


def test_backbone_loads_through_http_and_predicts(
    served: Path, tiny_models: dict[str, Path], isolated_cache: Path
) -> None:
    with serve_directory(served) as url:
        spec = tiny_spec(handle=f"{url}/fv.tar.gz", name="tiny_http_fv")
        backbone = hubtransfer.load_backbone(spec)
    local = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"], name="tiny_local_fv"))
    images = np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(backbone.predict(images), local.predict(images), rtol=1e-6)
    assert backbone.content_hash == local.content_hash


def test_http_404_is_unreachable_with_ways_out(served: Path, isolated_cache: Path) -> None:
    with serve_directory(served) as url:
        handle = f"{url}/missing.tar.gz"
        with pytest.raises(HandleUnreachableError, match="HTTP 404") as caught:
            resolve_handle(handle)
    message = str(caught.value)
    assert handle in message
    assert str(hub_cache_dir()) in message
    assert "efficientnet_lite0_embedded_fv" in message
    assert not cache_entry_for(handle).exists()


def test_server_down_fails_fast_and_leaves_no_entry(isolated_cache: Path) -> None:
    handle = f"http://127.0.0.1:{_closed_port()}/fv.tar.gz"
    with pytest.raises(HandleUnreachableError, match="Cannot fetch"):
        resolve_handle(handle)
    assert not cache_entry_for(handle).exists()
    assert not any(p.name.endswith(".tmp") for p in hub_cache_dir().glob(".*"))


def test_credentials_never_appear_in_errors(served: Path, isolated_cache: Path) -> None:
    with serve_directory(served) as url:
        handle = url.replace("http://", "http://alice:s3cret@") + "/missing.tar.gz"
        with pytest.raises(HandleUnreachableError) as caught:
            resolve_handle(handle)
    assert "s3cret" not in str(caught.value)
    assert "***@127.0.0.1" in str(caught.value)


def test_not_an_archive_leaves_no_entry(tmp_path: Path, isolated_cache: Path) -> None:
    (tmp_path / "bad.tar.gz").write_bytes(b"this is not gzip at all")
    with serve_directory(tmp_path) as url:
        handle = f"{url}/bad.tar.gz"
        with pytest.raises(HandleError, match="not a readable tar archive"):
            resolve_handle(handle)
    assert not cache_entry_for(handle).exists()


def _unsafe_archive(path: Path, kind: str) -> None:
    with tarfile.open(path, "w:gz") as tar:
        payload = b"x"
        if kind == "symlink":
            member = tarfile.TarInfo("saved_model.pb")
            member.type = tarfile.SYMTYPE
            member.linkname = "/etc/passwd"
            tar.addfile(member)
            return
        if kind == "device":
            member = tarfile.TarInfo("dev0")
            member.type = tarfile.CHRTYPE
            tar.addfile(member)
            return
        if kind == "hardlink":
            member = tarfile.TarInfo("saved_model.pb")
            member.type = tarfile.LNKTYPE
            member.linkname = "../../outside"
            tar.addfile(member)
            return
        name = {"absolute": "/tmp/evil.pb", "dotdot": "model/../../evil.pb"}[kind]
        member = tarfile.TarInfo(name)
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink", "hardlink", "device"])
def test_unsafe_archives_are_refused_before_extraction(
    kind: str, tmp_path: Path, isolated_cache: Path
) -> None:
    www = tmp_path / "www"
    www.mkdir()
    _unsafe_archive(www / "evil.tar.gz", kind)
    with serve_directory(www) as url:
        handle = f"{url}/evil.tar.gz"
        with pytest.raises(UnsafeArchiveError, match="refusing to unpack"):
            resolve_handle(handle)
    assert not cache_entry_for(handle).exists()
    assert not (tmp_path / "evil.pb").exists()


def test_broken_http_cache_entry_is_reported_and_replaced(
    served: Path, isolated_cache: Path
) -> None:
    with serve_directory(served) as url:
        handle = f"{url}/fv.tar.gz"
        broken = cache_entry_for(handle)
        (broken / "variables").mkdir(parents=True)
        with pytest.warns(UserWarning, match="no saved_model.pb"):
            path = resolve_handle(handle)
    assert (path / "saved_model.pb").is_file()


def test_concurrent_downloads_all_succeed(served: Path, isolated_cache: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch(handle: str) -> None:
        try:
            results.append(resolve_handle(handle))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    with serve_directory(served) as url:
        handle = f"{url}/fv.tar.gz"
        threads = [threading.Thread(target=fetch, args=(handle,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert (results[0] / "saved_model.pb").is_file()


TFHUB_HANDLE = "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"


def test_tfhub_handle_offline_fails_fast_with_ways_out(
    isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Point the host at a closed loopback port through a proxy so the test
    # means the same thing on a machine that does have internet.
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(HandleUnreachableError) as caught:
        resolve_handle(TFHUB_HANDLE)
    message = str(caught.value)
    assert TFHUB_HANDLE in message
    assert str(cache_entry_for(TFHUB_HANDLE)) in message
    assert "local SavedModel folder" in message
    assert "efficientnet_lite0_embedded_fv" in message


def test_tfhub_handle_uses_a_prefilled_cache_offline(
    tiny_models: dict[str, Path], isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{_closed_port()}")
    entry = cache_entry_for(TFHUB_HANDLE)
    assert entry.name == hashlib.sha1(TFHUB_HANDLE.encode()).hexdigest()
    shutil.copytree(tiny_models["fv"], entry)
    assert resolve_handle(TFHUB_HANDLE) == entry
    backbone = hubtransfer.load_backbone(tiny_spec(handle=TFHUB_HANDLE, name="prefilled_fv"))
    assert backbone.predict(np.zeros((1, 32, 32, 3), np.float32)).shape == (1, 8)


def test_tfhub_cache_dir_variable_is_respected(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "tfhub"))
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{_closed_port()}")
    assert hub_cache_dir() == tmp_path / "tfhub"
    shutil.copytree(tiny_models["fv"], cache_entry_for(TFHUB_HANDLE))
    assert resolve_handle(TFHUB_HANDLE).parent == tmp_path / "tfhub"


def test_broken_tfhub_cache_entry_is_reported_and_removed(
    isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{_closed_port()}")
    entry = cache_entry_for(TFHUB_HANDLE)
    (entry / "variables").mkdir(parents=True)
    with (
        pytest.warns(UserWarning, match="no saved_model.pb"),
        pytest.raises(HandleUnreachableError),
    ):
        resolve_handle(TFHUB_HANDLE)
    assert not entry.exists()


def test_default_cache_is_per_user_not_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HUBTRANSFER_CACHE_DIR")
    monkeypatch.delenv("TFHUB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hubtransfer.cache_dir() == tmp_path / "xdg" / "hubtransfer"
    assert hub_cache_dir() == tmp_path / "xdg" / "hubtransfer" / "tfhub"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert hubtransfer.cache_dir() == Path.home() / ".cache" / "hubtransfer"


def test_custom_resolver_is_tried_first(tiny_models: dict[str, Path]) -> None:
    class Mirror:
        def is_supported(self, handle: str) -> bool:
            return handle.startswith("mirror://")

        def __call__(self, handle: str) -> str:
            return str(tiny_models[handle.removeprefix("mirror://")])

    assert resolve_handle("mirror://fv", resolvers=[Mirror()]) == tiny_models["fv"]
    with pytest.raises(HandleError, match="No resolver supports"):
        resolve_handle("mirror://fv", resolvers=[])


def test_bad_timeout_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> None:
    monkeypatch.setenv("HUBTRANSFER_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(hubtransfer.InvalidParameterError, match="HUBTRANSFER_DOWNLOAD_TIMEOUT"):
        resolve_handle("http://127.0.0.1:9/x.tar.gz")
