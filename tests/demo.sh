#!/bin/bash
# Builds iommud and runs its inventory on a bundled sample host: a snapshot captured from a real
# Linux kernel (booted under QEMU with an emulated Intel VT-d IOMMU, see tests/vm/).
set -euo pipefail
cd "$(dirname "$0")/.."

sample=${1:-tests/fixtures/captured/intel-6.12}

if [ ! -d build-demo ]; then
        meson setup build-demo >/dev/null
fi
ninja -C build-demo daemon/iommud >/dev/null

echo "\$ build-demo/daemon/iommud --dump --root $sample > dump.json"
build-demo/daemon/iommud --dump --root "$sample" > build-demo/dump.json
echo
python3 tests/show-dump.py build-demo/dump.json
echo
echo "The whole inventory, as JSON: build-demo/dump.json"
