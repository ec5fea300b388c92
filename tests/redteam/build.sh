#!/bin/sh
# Builds each attack against build/runtime/*.a (run after the main build).
cd "$(dirname "$0")/../.." || exit 1
mkdir -p build/redteam
for f in tests/redteam/*.c; do
  n=$(basename "$f" .c)
  gcc -O1 -g -masm=intel -Iinclude -Ibuild/include -o build/redteam/$n "$f" build/runtime/libcordon.a build/runtime/libcordon_inspector.a \
    -lcapstone -lseccomp -lstdc++ -lpthread || exit 1
done
# C++ attacks: linked as the CMake target links programs (-z now, full RELRO).
for f in tests/redteam/*.cc; do
  [ -e "$f" ] || continue
  n=$(basename "$f" .cc)
  g++ -O1 -g -masm=intel -Iinclude -Ibuild/include -Wl,-z,now,-z,relro -o build/redteam/$n "$f" build/runtime/libcordon.a \
    build/runtime/libcordon_inspector.a -lcapstone -lseccomp -lpthread || exit 1
done
