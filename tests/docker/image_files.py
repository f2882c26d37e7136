"""Lists the files of an image, every layer, from `docker save IMAGE` on stdin (one per line)."""

import io
import json
import sys
import tarfile

with tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read())) as image:
    manifest = json.load(image.extractfile("manifest.json"))
    for layer in manifest[0]["Layers"]:
        with tarfile.open(fileobj=image.extractfile(layer)) as files:
            for member in files.getmembers():
                print(member.name)
