// A Brainfuck compiler for x86-64: parser and optimizer (run-length folding,
// pointer offsets, clear and multiply loops), a plain reference interpreter,
// and a code generator that can emit its constants naively or split so that
// no byte sequence of the code is a WRPKRU or XRSTOR (samples/jit/README.md).
// Nothing here knows about Cordon: jit_demo.cc publishes the code through
// the code region, bench/jit_bench.cc also through mmap/mprotect.
#ifndef CORDON_SAMPLES_JIT_BF_H_
#define CORDON_SAMPLES_JIT_BF_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bf {

// Cells are bytes that wrap; the tape has kTapeCells of them and the program
// starts at cell 0. Reading past the end of input gives 0.
constexpr size_t kTapeCells = size_t{1} << 24;

// ---- Intermediate representation ----
enum class OpKind : uint8_t {
  kAdd,    // cell[off] += n
  kSet,    // cell[off] = n
  kMove,   // pointer += off
  kMul,    // for each target t: cell[t.off] += cell[0] * t.n; then cell[0] = 0
  kOut,    // output cell[off]
  kIn,     // cell[off] = next input byte
  kOpen,   // while (cell[0] != 0) {
  kClose,  // }
};

struct Target {
  int32_t off;
  uint8_t n;
};

struct Op {
  OpKind kind;
  int32_t off = 0;  // cell offset from the pointer (kMove: the distance)
  uint8_t n = 0;
  std::vector<Target> targets;  // kMul
};

struct Program {
  std::vector<Op> ops;
  size_t source_commands = 0;  // the eight command characters in the source
};

// Parses and optimizes; false (with *error) for unbalanced brackets or a
// pointer offset beyond the tape.
bool Parse(const std::string& source, Program* out, std::string* error);

// ---- Reference interpreter ----
// Runs the source command by command, with no optimization at all: the
// oracle the compiled code is compared against. False (with *error) if the
// pointer leaves the tape or the step budget runs out.
bool Interpret(const std::string& source, const std::string& input, std::string* output, std::string* error,
               uint64_t max_steps = uint64_t{1} << 36);

// ---- Code generation ----
enum class Constants {
  kNaive,  // every constant as it comes: immediates, displacements, jumps
  kSplit,  // no 0x0F byte except as an opcode escape (README.md, "Splitting")
};

struct Code {
  std::vector<uint8_t> bytes;
  std::vector<size_t> escapes;  // offsets of the 0x0F opcode-escape bytes the emitter wrote
  size_t splits = 0;            // constants split, or jumps padded, to keep 0x0F out
};

// Input and output of the compiled code: out(c, ctx) and in(ctx).
using OutFn = void (*)(int c, void* ctx);
using InFn = int (*)(void* ctx);
// The compiled function: fn(tape, ctx, out, in). Position independent.
using CompiledFn = void (*)(uint8_t* tape, void* ctx, OutFn out, InFn in);

bool Compile(const Program& program, Constants constants, Code* out, std::string* error);

// The invariant kSplit promises: every 0x0F byte is one of the emitter's
// opcode escapes, and the byte after it is neither 0x01 nor 0xAE. Then no
// offset can start a WRPKRU (0F 01 EF) or an XRSTOR (0F AE /5). False, with
// the first offending offset, otherwise.
bool CheckNoPatternPrefix(const Code& code, size_t* bad_offset);

// Offsets where the inspector's patterns start (0F 01 EF, or 0F AE with
// ModRM reg 5 and a memory operand), byte by byte: the same rule as
// runtime/inspector/patterns.cc, written out again for reporting.
std::vector<size_t> PatternOffsets(const uint8_t* data, size_t len);

// The standard I/O context: output appended to a string, input read from one.
struct Io {
  std::string output;
  std::string input;
  size_t input_pos = 0;
  static void Out(int c, void* ctx);
  static int In(void* ctx);
};

// A tape of kTapeCells zero bytes between two inaccessible guard ranges, so
// that a program running off the tape faults instead of writing elsewhere.
class Tape {
 public:
  Tape();
  ~Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;
  bool ok() const { return cells_ != nullptr; }
  uint8_t* cells() { return cells_; }
  void Clear(size_t cells = kTapeCells);  // the first `cells` cells back to 0

 private:
  uint8_t* base_ = nullptr;
  uint8_t* cells_ = nullptr;
  size_t size_ = 0;
};

// Plain W^X without Cordon: an anonymous mapping written while read+write,
// then mprotect()ed to read+execute. What a JIT does in a process without
// Cordon (and what Cordon's lockdown forbids); the benchmarks' baseline.
class MappedCode {
 public:
  MappedCode() = default;
  ~MappedCode() { Unmap(); }
  MappedCode(const MappedCode&) = delete;
  MappedCode& operator=(const MappedCode&) = delete;
  // False (errno set) if mmap or mprotect fails.
  bool Map(const uint8_t* code, size_t len);
  void Unmap();
  void* entry() const { return base_; }

 private:
  void* base_ = nullptr;
  size_t size_ = 0;
};

// ---- Programs ----
// A Sierpinski triangle drawn by rule 90 on `width` cells for `rows` rows,
// `repeat` times (1..255): a Brainfuck program generated from a tiny macro
// layer, with copy loops (multiply), clear loops, runs and nested loops.
std::string SierpinskiProgram(int width, int rows, int repeat);

}  // namespace bf

#endif  // CORDON_SAMPLES_JIT_BF_H_
