# cmake -DIN=<preprocessed gate_sequences.inc> -DOUT=<header> -P EmbedSequences.cmake
# Writes the header that gives the plugin the gate's instruction sequences
# (runtime/gates/gate_sequences.inc, already run through the preprocessor)
# as one string, kGateSequences (compiler-pass/GateAsm.cpp emits it once
# per module).
file(READ "${IN}" text)
if(text MATCHES "\\)cordon_gates\"")
  message(FATAL_ERROR "${IN} holds the raw string's delimiter")
endif()
file(WRITE "${OUT}.tmp"
  "// Generated from runtime/gates/gate_sequences.inc by compiler-pass/EmbedSequences.cmake; do not edit.\n"
  "#pragma once\n"
  "namespace cordon::pass {\n"
  "inline constexpr const char kGateSequences[] = R\"cordon_gates(${text})cordon_gates\";\n"
  "}  // namespace cordon::pass\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
