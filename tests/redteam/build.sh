#!/bin/sh
# Builds each attack against build/runtime/*.a (run after the main build).
cd "$(dirname "$0")/../.." || exit 1
mkdir -p build/redteam/link
# plt_noshdr's library: partial RELRO, linked against with its sections,
# run without a section header table (e_shoff, e_shnum, e_shstrndx zeroed).
gcc -O1 -fPIC -shared -Wl,-z,relro,-z,lazy -Wl,-soname,libodd.so -o build/redteam/link/libodd.so tests/redteam/lib/odd.c || exit 1
cp build/redteam/link/libodd.so build/redteam/libodd.so
printf '\0\0\0\0\0\0\0\0' | dd of=build/redteam/libodd.so bs=1 seek=40 conv=notrunc status=none
printf '\0\0\0\0' | dd of=build/redteam/libodd.so bs=1 seek=60 conv=notrunc status=none
for f in tests/redteam/*.c; do
  n=$(basename "$f" .c)
  extra=
  [ "$n" = plt_noshdr ] && extra="build/redteam/link/libodd.so -Wl,-rpath,\$ORIGIN"
  # compat_mode_exit needs its gates below 4 GiB: a non-PIE executable (the
  # PIE build of the same source, compat_mode_exit_pie, reports "held").
  if [ "$n" = compat_mode_exit ]; then
    gcc -O1 -g -masm=intel -Iinclude -Ibuild/include -o build/redteam/${n}_pie "$f" build/runtime/libcordon.a \
      build/runtime/libcordon_inspector.a -lcapstone -lseccomp -lstdc++ -lpthread -ldl || exit 1
    extra=-no-pie
  fi
  gcc -O1 -g -masm=intel -Iinclude -Ibuild/include -o build/redteam/$n "$f" build/runtime/libcordon.a build/runtime/libcordon_inspector.a \
    $extra -lcapstone -lseccomp -lstdc++ -lpthread -ldl || exit 1
done
# C++ attacks: linked as the CMake target links programs (-z now, full RELRO).
for f in tests/redteam/*.cc; do
  [ -e "$f" ] || continue
  n=$(basename "$f" .cc)
  g++ -O1 -g -masm=intel -Iinclude -Ibuild/include -Wl,-z,now,-z,relro -o build/redteam/$n "$f" build/runtime/libcordon.a \
    build/runtime/libcordon_inspector.a -lcapstone -lseccomp -lpthread || exit 1
done
