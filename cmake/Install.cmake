# Install rules: headers, the static libraries and libcordon.so with exported targets for
# find_package(cordon CONFIG), a pkg-config file, the pass plugin,
# cordon-scan, cordon-audit with the audit stream's JSON Schema, cordon-key, cordon-vm
# with its guest init, and the docs.
include(CMakePackageConfigHelpers)
set(CORDON_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/cordon)
set(CORDON_PLUGIN_DIR ${CMAKE_INSTALL_LIBDIR}/cordon)

set(CORDON_INSTALLED_LIBS cordon cordon_inspector)
if(TARGET cordon_shared)
  list(APPEND CORDON_INSTALLED_LIBS cordon_shared)
endif()
install(TARGETS ${CORDON_INSTALLED_LIBS} EXPORT cordonTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/cordon/cordon.h ${PROJECT_SOURCE_DIR}/include/cordon/cordon.hpp
              ${PROJECT_BINARY_DIR}/include/cordon/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cordon)
install(EXPORT cordonTargets NAMESPACE cordon:: DESTINATION ${CORDON_CMAKE_DIR})

if(TARGET cordon_gates_plugin)
  install(TARGETS cordon_gates_plugin LIBRARY DESTINATION ${CORDON_PLUGIN_DIR})
endif()
install(TARGETS cordon-scan cordon-audit cordon-key RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The audit stream's schema (docs/audit.md) where tools look for data files;
# `cordon-audit schema` prints the same document.
install(FILES ${PROJECT_SOURCE_DIR}/docs/audit-schema-v1.json DESTINATION ${CMAKE_INSTALL_DATADIR}/cordon)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/tools/cordon-vm ${PROJECT_SOURCE_DIR}/tools/cordon-pku-run
        DESTINATION ${CMAKE_INSTALL_BINDIR})
# cordon-vm finds its guest init and the version beside itself in the tree,
# and in ../share/cordon once installed.
file(WRITE ${PROJECT_BINARY_DIR}/cordon-version "${PROJECT_VERSION}\n")
install(FILES ${PROJECT_SOURCE_DIR}/tools/vm/init.c DESTINATION ${CMAKE_INSTALL_DATADIR}/cordon/vm)
install(FILES ${PROJECT_BINARY_DIR}/cordon-version DESTINATION ${CMAKE_INSTALL_DATADIR}/cordon RENAME version)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/CHANGELOG.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/cordonConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cordonConfig.cmake INSTALL_DESTINATION ${CORDON_CMAKE_DIR}
  PATH_VARS CORDON_PLUGIN_DIR)
# 0.x: a new minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cordonConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cordonConfig.cmake ${PROJECT_BINARY_DIR}/cordonConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/CordonGates.cmake
        DESTINATION ${CORDON_CMAKE_DIR})

# pkg-config, for make and gcc users: cordon.pc links libcordon.so,
# cordon-static.pc the static library, which needs what it was linked
# against, so its Libs names them.
# Without the shared library (CORDON_BUILD_SHARED=OFF), cordon.pc is the
# static one.
configure_file(${PROJECT_SOURCE_DIR}/cmake/cordon-static.pc.in ${PROJECT_BINARY_DIR}/cordon-static.pc @ONLY)
if(TARGET cordon_shared)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/cordon.pc.in ${PROJECT_BINARY_DIR}/cordon.pc @ONLY)
else()
  configure_file(${PROJECT_SOURCE_DIR}/cmake/cordon-static.pc.in ${PROJECT_BINARY_DIR}/cordon.pc @ONLY)
endif()
install(FILES ${PROJECT_BINARY_DIR}/cordon.pc ${PROJECT_BINARY_DIR}/cordon-static.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
