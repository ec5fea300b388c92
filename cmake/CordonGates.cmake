# cordon_enable_gates(<target>): compiles the target with the cordon-gates
# pass plugin, so that its CORDON_TRUSTED functions get generated gates, and
# links the runtime. Works in Cordon's own tree, after add_subdirectory(),
# and from an installed package (find_package(cordon CONFIG) sets
# CORDON_GATES_PLUGIN). The target must be compiled by clang 14 (the plugin
# is built against LLVM 14); anything else stops the configure step with a
# message, since CORDON_TRUSTED functions built without the plugin would run
# unprotected (cordon_init() refuses such programs too).
function(cordon_enable_gates target)
  foreach(lang C CXX)
    if(CMAKE_${lang}_COMPILER_LOADED AND NOT (CMAKE_${lang}_COMPILER_ID STREQUAL "Clang"
                                              AND CMAKE_${lang}_COMPILER_VERSION VERSION_GREATER_EQUAL 14
                                              AND CMAKE_${lang}_COMPILER_VERSION VERSION_LESS 15))
      message(FATAL_ERROR
        "cordon_enable_gates(${target}): the ${lang} compiler is ${CMAKE_${lang}_COMPILER_ID} "
        "${CMAKE_${lang}_COMPILER_VERSION}, but the Cordon pass plugin needs clang 14. Configure with "
        "-DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 (tools/bootstrap installs it).")
    endif()
  endforeach()
  if(NOT CORDON_GATES_PLUGIN OR (NOT TARGET cordon_gates_plugin AND NOT EXISTS "${CORDON_GATES_PLUGIN}"))
    message(FATAL_ERROR
      "cordon_enable_gates(${target}): the Cordon pass plugin (CordonGates.so) is not available: it is built "
      "only where LLVM 14 is installed (Debian: llvm-14-dev); install it and configure Cordon again.")
  endif()
  set(plugin "${CORDON_GATES_PLUGIN}")
  target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:C,CXX>:-fpass-plugin=${plugin}>")
  if(TARGET cordon_gates_plugin)
    add_dependencies(${target} cordon_gates_plugin)
  endif()
  # A rebuilt plugin regenerates the gates.
  get_target_property(sources ${target} SOURCES)
  set_property(SOURCE ${sources} TARGET_DIRECTORY ${target} APPEND PROPERTY OBJECT_DEPENDS "${plugin}")
  target_link_libraries(${target} PRIVATE cordon::cordon)
endfunction()
