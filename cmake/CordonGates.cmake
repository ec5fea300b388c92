# cordon_enable_gates(<target>): compiles the target with the cordon-gates
# pass plugin, so that its CORDON_TRUSTED functions get generated gates, and
# links the runtime. The target must be compiled by clang 14 (the plugin is
# built against LLVM 14); anything else stops the configure step with a
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
  set(plugin "${CORDON_GATES_PLUGIN}")
  target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:C,CXX>:-fpass-plugin=${plugin}>")
  add_dependencies(${target} cordon_gates_plugin)
  # A rebuilt plugin regenerates the gates.
  get_target_property(sources ${target} SOURCES)
  set_property(SOURCE ${sources} TARGET_DIRECTORY ${target} APPEND PROPERTY OBJECT_DEPENDS "${plugin}")
  target_link_libraries(${target} PRIVATE cordon::cordon)
endfunction()
