"""Writes a container image of one layer as a tarball, offline and reproducibly: the same
inputs give the same bytes, so the same layer, config and manifest digests on every run.

The tarball is an OCI image layout (oci-layout, index.json, blobs/sha256/) that
`ctr images import` reads, and also carries a docker-archive manifest.json for `docker load`.

usage: mkimage.py OUT NAME:TAG [--file SRC=DEST]... [--link DEST=TARGET]... [--dir DEST]...
                  [--entrypoint ARG]... [--cmd ARG]... [--env NAME=VALUE]...
Prints the image's digests.
"""

import argparse
import hashlib
import io
import json
import posixpath
import sys
import tarfile

# Every timestamp in the image: the layer's files, the config's creation date.
EPOCH = 0
CREATED = "1970-01-01T00:00:00Z"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_path(d):
    return "blobs/sha256/" + d.split(":", 1)[1]


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def entry(name, kind, mode, size=0, target=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = target
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def add_file(archive, name, data, mode):
    archive.addfile(entry(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))


def add_dir(archive, name):
    archive.addfile(entry(name, tarfile.DIRTYPE, 0o755))


def split_pair(text, what):
    left, sep, right = text.partition("=")
    if not sep or not left or not right:
        sys.exit(f"mkimage.py: {what} must be A=B, not {text!r}")
    return left, right


def layer_bytes(files, links, dirs):
    """An uncompressed tar (its digest is also its diff ID), entries sorted by path, each
    directory listed before what it holds."""
    contents = {}
    for src, dest in files:
        with open(src, "rb") as f:
            contents[dest.strip("/")] = ("file", f.read())
    for dest, target in links:
        contents[dest.strip("/")] = ("link", target)
    wanted_dirs = {d.strip("/") for d in dirs}
    for path in list(contents):
        parent = posixpath.dirname(path)
        while parent:
            wanted_dirs.add(parent)
            parent = posixpath.dirname(parent)
    for d in wanted_dirs:
        contents.setdefault(d, ("dir", None))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for path in sorted(contents):
            kind, value = contents[path]
            if kind == "dir":
                add_dir(archive, path)
            elif kind == "link":
                archive.addfile(entry(path, tarfile.SYMTYPE, 0o777, target=value))
            else:
                add_file(archive, path, value, 0o755)
    return out.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("ref", help="NAME:TAG")
    parser.add_argument("--file", action="append", default=[], help="SRC=DEST (mode 0755)")
    parser.add_argument("--link", action="append", default=[], help="DEST=TARGET (a symlink)")
    parser.add_argument("--dir", action="append", default=[], help="an empty directory")
    parser.add_argument("--entrypoint", action="append", default=None)
    parser.add_argument("--cmd", action="append", default=None)
    parser.add_argument("--env", action="append", default=[])
    args = parser.parse_args()
    name, sep, tag = args.ref.rpartition(":")
    if not sep or "/" in tag:
        sys.exit(f"mkimage.py: the reference must be NAME:TAG, not {args.ref!r}")

    layer = layer_bytes(
        [split_pair(f, "--file") for f in args.file],
        [split_pair(link, "--link") for link in args.link],
        args.dir,
    )
    layer_digest = digest(layer)
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": CREATED,
            "config": {
                "Env": [DEFAULT_PATH] + args.env,
                "Entrypoint": args.entrypoint,
                "Cmd": args.cmd,
                "WorkingDir": "/",
            },
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created": CREATED, "created_by": "tests/runtimes/mkimage.py"}],
        }
    )
    config_digest = digest(config)
    manifest_type = "application/vnd.oci.image.manifest.v1+json"
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    )
    manifest_digest = digest(manifest)
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": manifest_type,
                    "digest": manifest_digest,
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": args.ref,
                        "org.opencontainers.image.ref.name": tag,
                    },
                }
            ],
        }
    )
    docker_manifest = canonical_json(
        [
            {
                "Config": blob_path(config_digest),
                "RepoTags": [args.ref],
                "Layers": [blob_path(layer_digest)],
            }
        ]
    )

    with open(args.out, "wb") as out:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
            add_dir(archive, "blobs")
            add_dir(archive, "blobs/sha256")
            for data in sorted((layer, config, manifest), key=digest):
                add_file(archive, blob_path(digest(data)), data, 0o644)
            add_file(archive, "index.json", index, 0o644)
            add_file(archive, "manifest.json", docker_manifest, 0o644)
            add_file(archive, "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}), 0o644)
    print(f"{args.out}: {args.ref} manifest {manifest_digest} config {config_digest} layer {len(layer)} bytes")


if __name__ == "__main__":
    main()
