#!/usr/bin/env python3
"""docs/dbus-api.xml must be what `iommud --bus-introspect` prints.

usage: check_api_doc.py IOMMUD DOC
"""
import difflib
import subprocess
import sys

iommud, doc = sys.argv[1], sys.argv[2]
generated = subprocess.run([iommud, "--bus-introspect"], capture_output=True, text=True, check=True).stdout
with open(doc) as f:
    kept = f.read()
if generated != kept:
    sys.stdout.writelines(difflib.unified_diff(kept.splitlines(True), generated.splitlines(True), doc,
                                               "iommud --bus-introspect"))
    print(f"not ok 1 - {doc} differs from iommud --bus-introspect; regenerate it:\n"
          f"#   iommud --bus-introspect > docs/dbus-api.xml")
    print("0 passed, 1 failed")
    sys.exit(1)
print(f"ok 1 - {doc} is what iommud --bus-introspect prints")
print("1 passed, 0 failed")
