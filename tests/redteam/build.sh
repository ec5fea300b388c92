#!/bin/sh
# Builds each attack against build/runtime/*.a (run after the main build).
cd "$(dirname "$0")/../.." || exit 1
mkdir -p build/redteam
for f in tests/redteam/*.c; do
  n=$(basename "$f" .c)
  gcc -O1 -g -masm=intel -Iinclude -Ibuild/include -o build/redteam/$n "$f" build/runtime/libcordon.a build/runtime/libcordon_inspector.a \
    -lcapstone -lseccomp -lstdc++ -lpthread || exit 1
done
