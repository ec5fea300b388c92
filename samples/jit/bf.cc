// The Brainfuck compiler of bf.h: parser and optimizer, reference
// interpreter, x86-64 code generator (naive or split constants), and the
// Sierpinski program generator.
#include "samples/jit/bf.h"

#include <sys/mman.h>

#include <cstring>
#include <map>

namespace bf {

namespace {

bool IsCommand(char c) {
  return c == '+' || c == '-' || c == '<' || c == '>' || c == '[' || c == ']' || c == '.' || c == ',';
}

std::string Commands(const std::string& source) {
  std::string cmds;
  cmds.reserve(source.size());
  for (char c : source) {
    if (IsCommand(c)) cmds.push_back(c);
  }
  return cmds;
}

// match[i] is the other bracket of cmds[i]; false if they do not balance.
bool MatchBrackets(const std::string& cmds, std::vector<size_t>* match, std::string* error) {
  match->assign(cmds.size(), 0);
  std::vector<size_t> open;
  for (size_t i = 0; i < cmds.size(); ++i) {
    if (cmds[i] == '[') {
      open.push_back(i);
    } else if (cmds[i] == ']') {
      if (open.empty()) {
        *error = "unmatched ']' at command " + std::to_string(i);
        return false;
      }
      (*match)[i] = open.back();
      (*match)[open.back()] = i;
      open.pop_back();
    }
  }
  if (!open.empty()) {
    *error = "unmatched '[' at command " + std::to_string(open.back());
    return false;
  }
  return true;
}

constexpr int64_t kMaxOffset = static_cast<int64_t>(kTapeCells);

// Folds runs of + - < > into offset adds and one pointer move per basic
// block; [ and ] end a block.
class Optimizer {
 public:
  explicit Optimizer(Program* out) : out_(out) {}

  bool Run(const std::string& cmds, const std::vector<size_t>& match, std::string* error) {
    for (size_t i = 0; i < cmds.size(); ++i) {
      switch (cmds[i]) {
        case '+':
          ++adds_[ptr_];
          break;
        case '-':
          --adds_[ptr_];
          break;
        case '>':
          ++ptr_;
          break;
        case '<':
          --ptr_;
          break;
        case '.':
          FlushAt(ptr_);
          Push({OpKind::kOut, Off(ptr_), 0, {}});
          break;
        case ',':
          adds_.erase(ptr_);  // overwritten by the input
          Push({OpKind::kIn, Off(ptr_), 0, {}});
          break;
        case '[':
          FlushAll();
          if (SimpleLoop(cmds, i + 1, match[i])) {
            i = match[i];
          } else {
            Push({OpKind::kOpen, 0, 0, {}});
          }
          break;
        case ']':
          FlushAll();
          Push({OpKind::kClose, 0, 0, {}});
          break;
      }
      if (ptr_ > kMaxOffset || ptr_ < -kMaxOffset) {
        *error = "pointer offset beyond the tape at command " + std::to_string(i);
        return false;
      }
    }
    FlushAll();
    return true;
  }

 private:
  static int32_t Off(int64_t v) { return static_cast<int32_t>(v); }

  // Appends, merging "cell = 0" with an add to the same cell after it.
  void Push(Op op) {
    if (op.kind == OpKind::kAdd && !out_->ops.empty()) {
      Op& last = out_->ops.back();
      if (last.kind == OpKind::kSet && last.off == op.off) {
        last.n = static_cast<uint8_t>(last.n + op.n);
        return;
      }
    }
    out_->ops.push_back(std::move(op));
  }

  void FlushAt(int64_t off) {
    auto it = adds_.find(off);
    if (it == adds_.end()) return;
    if (it->second != 0) Push({OpKind::kAdd, Off(off), it->second, {}});
    adds_.erase(it);
  }

  void FlushAll() {
    for (const auto& [off, n] : adds_) {
      if (n != 0) Push({OpKind::kAdd, Off(off), n, {}});
    }
    adds_.clear();
    if (ptr_ != 0) Push({OpKind::kMove, Off(ptr_), 0, {}});
    ptr_ = 0;
  }

  // A loop of + - < > only, ending where it started, that changes its own
  // cell by 1 or -1, runs cell times (or -cell times) whatever it does to
  // the others: it becomes one multiply (a clear when it has no targets).
  bool SimpleLoop(const std::string& cmds, size_t begin, size_t end) {
    std::map<int64_t, uint8_t> delta;
    int64_t p = 0;
    for (size_t j = begin; j < end; ++j) {
      switch (cmds[j]) {
        case '+':
          ++delta[p];
          break;
        case '-':
          --delta[p];
          break;
        case '>':
          ++p;
          break;
        case '<':
          --p;
          break;
        default:
          return false;
      }
      if (p > kMaxOffset || p < -kMaxOffset) return false;
    }
    if (p != 0) return false;
    const uint8_t own = delta[0];
    if (own != 1 && own != 255) return false;
    Op op{OpKind::kMul, 0, 0, {}};
    for (const auto& [off, n] : delta) {
      if (off == 0 || n == 0) continue;
      // Counting up from v reaches 0 after -v steps: the factor changes sign.
      op.targets.push_back({Off(off), static_cast<uint8_t>(own == 255 ? n : 256 - n)});
    }
    if (op.targets.empty()) {
      Push({OpKind::kSet, 0, 0, {}});
    } else {
      Push(std::move(op));
    }
    return true;
  }

  Program* out_;
  std::map<int64_t, uint8_t> adds_;
  int64_t ptr_ = 0;
};

}  // namespace

bool Parse(const std::string& source, Program* out, std::string* error) {
  const std::string cmds = Commands(source);
  std::vector<size_t> match;
  if (!MatchBrackets(cmds, &match, error)) return false;
  Program p;
  p.source_commands = cmds.size();
  if (!Optimizer(&p).Run(cmds, match, error)) return false;
  *out = std::move(p);
  return true;
}

bool Interpret(const std::string& source, const std::string& input, std::string* output, std::string* error,
               uint64_t max_steps) {
  const std::string cmds = Commands(source);
  std::vector<size_t> match;
  if (!MatchBrackets(cmds, &match, error)) return false;
  std::vector<uint8_t> tape(kTapeCells, 0);
  size_t ptr = 0, in = 0;
  uint64_t steps = 0;
  for (size_t pc = 0; pc < cmds.size(); ++pc) {
    if (++steps > max_steps) {
      *error = "step budget exhausted";
      return false;
    }
    switch (cmds[pc]) {
      case '+':
        ++tape[ptr];
        break;
      case '-':
        --tape[ptr];
        break;
      case '>':
        if (++ptr == kTapeCells) {
          *error = "pointer ran off the end of the tape";
          return false;
        }
        break;
      case '<':
        if (ptr-- == 0) {
          *error = "pointer ran off the start of the tape";
          return false;
        }
        break;
      case '.':
        output->push_back(static_cast<char>(tape[ptr]));
        break;
      case ',':
        tape[ptr] = in < input.size() ? static_cast<uint8_t>(input[in++]) : 0;
        break;
      case '[':
        if (tape[ptr] == 0) pc = match[pc];
        break;
      case ']':
        if (tape[ptr] != 0) pc = match[pc];
        break;
    }
  }
  return true;
}

// ---------------------------------------------------------------- codegen --

namespace {

// The x86-64 encoding. The compiled function keeps the tape pointer in rbx,
// the I/O context in r12, out in r13 and in in r14 (all callee-saved, so the
// calls keep them); eax, ecx, edx, edi and esi are scratch.
constexpr int kRbx = 3, kRdx = 2;
constexpr int kAl = 0, kCl = 1, kEdi = 7;
constexpr uint8_t kEscape = 0x0f;
constexpr uint8_t kNop = 0x90;
// Well below 0x0F000000, so the top byte of a jump offset is never 0x0F.
constexpr size_t kMaxCode = size_t{128} << 20;

bool FitsInt8(int64_t v) {
  return v >= -128 && v <= 127;
}

// Whether the n low bytes of v, as encoded, hold no 0x0F.
bool CleanBytes(uint32_t v, int n) {
  for (int i = 0; i < n; ++i) {
    if (((v >> (8 * i)) & 0xff) == kEscape) return false;
  }
  return true;
}

// The bytes an immediate or displacement is encoded in: 1 if it fits a
// signed byte, else 4.
bool CleanValue(int32_t v) {
  return CleanBytes(static_cast<uint32_t>(v), FitsInt8(v) ? 1 : 4);
}

// v = a + b with neither a nor b holding a 0x0F byte in any of its four
// bytes (so in its 1-byte form either). Byte by byte from the bottom: where
// v's byte, less the borrow, would be 0x0F, a takes 0x10 there and b 0xFF
// (borrowing one from the next byte, which is then checked in turn);
// elsewhere a's byte is 0. a's bytes are all 0 or 0x10, and |v| <= 2^24
// keeps a and b inside int32.
void Split32(int32_t v, int32_t* a, int32_t* b) {
  const auto u = static_cast<uint32_t>(v);
  uint32_t av = 0;
  int borrow = 0;
  for (int i = 0; i < 4; ++i) {
    const int x = static_cast<int>((u >> (8 * i)) & 0xff) - borrow;
    if ((x & 0xff) == kEscape) {
      av |= uint32_t{0x10} << (8 * i);
      borrow = 1;  // x - 0x10 is -1
    } else {
      borrow = x < 0 ? 1 : 0;
    }
  }
  *a = static_cast<int32_t>(av);
  *b = static_cast<int32_t>(static_cast<int64_t>(v) - static_cast<int64_t>(*a));
}

// An 8-bit constant: 0x0F is the only bad value, and 0x10 + 0xFF is 0x0F.
constexpr uint8_t kSplitHigh = 0x10, kSplitLow = 0xff;

class Emitter {
 public:
  Emitter(Constants constants, Code* out) : split_(constants == Constants::kSplit), c_(out) {}

  bool Compile(const Program& program, std::string* error) {
    Prologue();
    std::vector<std::pair<size_t, size_t>> loops;  // (je's rel32 offset, body start)
    for (const Op& op : program.ops) {
      switch (op.kind) {
        case OpKind::kAdd:
          AddCell(op.off, op.n);
          break;
        case OpKind::kSet:
          SetCell(op.off, op.n);
          break;
        case OpKind::kMove:
          MovePointer(op.off);
          break;
        case OpKind::kMul:
          Multiply(op);
          break;
        case OpKind::kOut:
          Output(op.off);
          break;
        case OpKind::kIn:
          Input(op.off);
          break;
        case OpKind::kOpen:
          CmpCellZero();
          Escape(0x84);  // je rel32, patched at the matching close
          loops.emplace_back(Size(), 0);
          D32(0);
          loops.back().second = Size();
          break;
        case OpKind::kClose: {
          if (loops.empty()) {
            *error = "unbalanced loops in the program";
            return false;
          }
          const auto [je_rel, body] = loops.back();
          loops.pop_back();
          CloseLoop(je_rel, body);
          break;
        }
      }
      if (Size() > kMaxCode) {
        *error = "the code would exceed " + std::to_string(kMaxCode >> 20) + " MiB";
        return false;
      }
    }
    if (!loops.empty()) {
      *error = "unbalanced loops in the program";
      return false;
    }
    Epilogue();
    return true;
  }

 private:
  struct Addr {
    int base;
    int32_t disp;
  };

  size_t Size() const { return c_->bytes.size(); }
  void B(uint8_t b) { c_->bytes.push_back(b); }
  void D32(uint32_t v) {
    for (int i = 0; i < 4; ++i) B(static_cast<uint8_t>(v >> (8 * i)));
  }
  void Patch32(size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) c_->bytes[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  // A two-byte opcode 0F xx, the only place kSplit code has a 0x0F byte.
  void Escape(uint8_t second) {
    c_->escapes.push_back(Size());
    B(kEscape);
    B(second);
  }

  // The address of cell off. A displacement with a 0x0F byte is split: rdx
  // gets rbx + a, and the access uses [rdx + b].
  Addr At(int32_t off) {
    if (!split_ || CleanValue(off)) return {kRbx, off};
    int32_t a, b;
    Split32(off, &a, &b);
    ++c_->splits;
    B(0x48);  // lea rdx, [rbx + a]
    B(0x8d);
    ModRm(kRdx, {kRbx, a});
    return {kRdx, b};
  }
  // ModRM (and displacement) for reg and [base + disp]; neither base is rsp
  // or rbp, so no SIB byte and [base] needs no displacement.
  void ModRm(int reg, Addr a) {
    const auto rm = static_cast<uint8_t>((reg << 3) | a.base);
    if (a.disp == 0) {
      B(rm);
    } else if (FitsInt8(a.disp)) {
      B(0x40 | rm);
      B(static_cast<uint8_t>(a.disp));
    } else {
      B(0x80 | rm);
      D32(static_cast<uint32_t>(a.disp));
    }
  }

  void Prologue() {
    B(0x53);                                      // push rbx
    for (uint8_t r : {0x54, 0x55, 0x56, 0x57}) {  // push r12..r15 (r15: 16-byte stack alignment)
      B(0x41);
      B(r);
    }
    for (uint8_t b : {0x48, 0x89, 0xfb, 0x49, 0x89, 0xf4, 0x49, 0x89, 0xd5, 0x49, 0x89, 0xce}) {
      B(b);  // mov rbx, rdi; mov r12, rsi; mov r13, rdx; mov r14, rcx
    }
  }
  void Epilogue() {
    for (uint8_t r : {0x5f, 0x5e, 0x5d, 0x5c}) {  // pop r15..r12
      B(0x41);
      B(r);
    }
    B(0x5b);  // pop rbx
    B(0xc3);  // ret
  }

  // add byte [cell], n
  void AddCell(int32_t off, uint8_t n) {
    if (split_ && n == kEscape) {
      ++c_->splits;
      AddCellImm(off, kSplitHigh);
      AddCellImm(off, kSplitLow);
      return;
    }
    AddCellImm(off, n);
  }
  void AddCellImm(int32_t off, uint8_t n) {
    const Addr a = At(off);
    B(0x80);
    ModRm(0, a);
    B(n);
  }
  // mov byte [cell], n
  void SetCell(int32_t off, uint8_t n) {
    const bool split = split_ && n == kEscape;
    const Addr a = At(off);
    B(0xc6);
    ModRm(0, a);
    B(split ? kSplitHigh : n);
    if (split) {
      ++c_->splits;
      B(0x80);
      ModRm(0, a);
      B(kSplitLow);
    }
  }
  // add rbx, d
  void MovePointer(int32_t d) {
    if (split_ && !CleanValue(d)) {
      int32_t a, b;
      Split32(d, &a, &b);
      ++c_->splits;
      AddRbx(a);
      AddRbx(b);
      return;
    }
    AddRbx(d);
  }
  void AddRbx(int32_t d) {
    B(0x48);
    if (FitsInt8(d)) {
      B(0x83);
      B(0xc3);
      B(static_cast<uint8_t>(d));
    } else {
      B(0x81);
      B(0xc3);
      D32(static_cast<uint32_t>(d));
    }
  }
  // eax = cell[0]; each target += eax * factor (in cl); cell[0] = 0.
  void Multiply(const Op& op) {
    Escape(0xb6);  // movzx eax, byte [rbx]
    ModRm(0, {kRbx, 0});
    for (const Target& t : op.targets) {
      if (t.n == 1 || t.n == 0xff) {
        const Addr a = At(t.off);
        B(t.n == 1 ? 0x00 : 0x28);  // add/sub byte [cell], al
        ModRm(kAl, a);
        continue;
      }
      B(0x6b);  // imul ecx, eax, imm8
      B(0xc8);
      if (split_ && t.n == kEscape) {
        ++c_->splits;
        B(kSplitHigh);  // 16 * eax, then minus eax
        B(0x29);        // sub ecx, eax
        B(0xc1);
      } else {
        B(t.n);
      }
      const Addr a = At(t.off);
      B(0x00);  // add byte [cell], cl
      ModRm(kCl, a);
    }
    SetCell(0, 0);
  }
  void Output(int32_t off) {
    const Addr a = At(off);
    Escape(0xb6);  // movzx edi, byte [cell]
    ModRm(kEdi, a);
    for (uint8_t b : {0x4c, 0x89, 0xe6, 0x41, 0xff, 0xd5}) B(b);  // mov rsi, r12; call r13
  }
  void Input(int32_t off) {
    for (uint8_t b : {0x4c, 0x89, 0xe7, 0x41, 0xff, 0xd6}) B(b);  // mov rdi, r12; call r14
    const Addr a = At(off);
    B(0x88);  // mov byte [cell], al
    ModRm(kAl, a);
  }
  void CmpCellZero() {
    B(0x80);  // cmp byte [rbx], 0
    ModRm(7, {kRbx, 0});
    B(0);
  }
  // cmp; jne body. Split: NOPs before the compare until jne's offset is
  // clean, then NOPs after it until the forward je's offset is clean. The
  // NOPs after the jne move only the forward target, so each offset is
  // fixed once chosen; an offset changes by one per NOP, so a bad byte at
  // position k costs at most 256^k NOPs, which kMaxCode keeps finite.
  void CloseLoop(size_t je_rel, size_t body) {
    constexpr size_t kCloseBytes = 3 + 6;  // cmp byte [rbx], 0; jne rel32
    auto back = [&] {
      return static_cast<uint32_t>(static_cast<int64_t>(body) - int64_t(Size() + kCloseBytes));
    };
    if (split_ && !CleanBytes(back(), 4)) {
      ++c_->splits;
      while (!CleanBytes(back(), 4)) B(kNop);
    }
    const uint32_t rel = back();
    CmpCellZero();
    Escape(0x85);
    D32(rel);
    auto forward = [&] { return static_cast<uint32_t>(Size() - (je_rel + 4)); };
    if (split_ && !CleanBytes(forward(), 4)) {
      ++c_->splits;
      while (!CleanBytes(forward(), 4)) B(kNop);
    }
    Patch32(je_rel, forward());
  }

  const bool split_;
  Code* c_;
};

}  // namespace

bool Compile(const Program& program, Constants constants, Code* out, std::string* error) {
  Code code;
  if (!Emitter(constants, &code).Compile(program, error)) return false;
  if (constants == Constants::kSplit) {
    size_t bad = 0;
    if (!CheckNoPatternPrefix(code, &bad)) {  // fail closed: a bug in the emitter
      *error = "internal error: a 0x0F byte that is not an opcode escape at offset " + std::to_string(bad);
      return false;
    }
  }
  *out = std::move(code);
  return true;
}

bool CheckNoPatternPrefix(const Code& code, size_t* bad_offset) {
  size_t next_escape = 0;
  const std::vector<uint8_t>& b = code.bytes;
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i] != kEscape) continue;
    while (next_escape < code.escapes.size() && code.escapes[next_escape] < i) ++next_escape;
    const bool escape = next_escape < code.escapes.size() && code.escapes[next_escape] == i;
    if (!escape || i + 1 >= b.size() || b[i + 1] == 0x01 || b[i + 1] == 0xae) {
      *bad_offset = i;
      return false;
    }
  }
  return true;
}

std::vector<size_t> PatternOffsets(const uint8_t* data, size_t len) {
  // The constants go through memory: a compiler that merged the three byte
  // compares into one 32-bit compare would put 0F 01 EF into this very
  // program's code, which cordon_init() inspects.
  static volatile const uint8_t kBytes[3] = {0x01, 0xef, 0xae};
  const uint8_t k01 = kBytes[0], kEf = kBytes[1], kAe = kBytes[2];
  std::vector<size_t> hits;
  for (size_t i = 0; i + 3 <= len; ++i) {
    if (data[i] != kEscape) continue;
    const uint8_t m = data[i + 2];
    if ((data[i + 1] == k01 && m == kEf) || (data[i + 1] == kAe && ((m >> 3) & 7) == 5 && (m >> 6) != 3)) {
      hits.push_back(i);
    }
  }
  return hits;
}

void Io::Out(int c, void* ctx) {
  static_cast<Io*>(ctx)->output.push_back(static_cast<char>(c));
}

int Io::In(void* ctx) {
  Io* io = static_cast<Io*>(ctx);
  return io->input_pos < io->input.size() ? static_cast<uint8_t>(io->input[io->input_pos++]) : 0;
}

namespace {
constexpr size_t kTapeGuard = size_t{1} << 20;
}

Tape::Tape() {
  size_ = kTapeCells + 2 * kTapeGuard;
  void* m = mmap(nullptr, size_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return;
  base_ = static_cast<uint8_t*>(m);
  if (mprotect(base_ + kTapeGuard, kTapeCells, PROT_READ | PROT_WRITE) != 0) {
    munmap(base_, size_);
    base_ = nullptr;
    return;
  }
  cells_ = base_ + kTapeGuard;
}

Tape::~Tape() {
  if (base_ != nullptr) munmap(base_, size_);
}

void Tape::Clear(size_t cells) {
  if (cells_ != nullptr) memset(cells_, 0, cells < kTapeCells ? cells : kTapeCells);
}

bool MappedCode::Map(const uint8_t* code, size_t len) {
  Unmap();
  const size_t size = (len + 4095) & ~size_t{4095};
  void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return false;
  memcpy(m, code, len);
  memset(static_cast<uint8_t*>(m) + len, 0xcc, size - len);  // INT3 after the code, like the code region
  if (mprotect(m, size, PROT_READ | PROT_EXEC) != 0) {
    munmap(m, size);
    return false;
  }
  base_ = m;
  size_ = size;
  return true;
}

void MappedCode::Unmap() {
  if (base_ != nullptr) munmap(base_, size_);
  base_ = nullptr;
  size_ = 0;
}

// ---------------------------------------------------------------- programs --

namespace {

// Brainfuck with named cells: the generator tracks the pointer, so every
// loop starts and ends on its own cell.
class Gen {
 public:
  void To(int cell) {
    for (; p_ < cell; ++p_) s_ += '>';
    for (; p_ > cell; --p_) s_ += '<';
  }
  void Add(int cell, int n) {
    To(cell);
    s_.append(static_cast<size_t>(n < 0 ? -n : n), n < 0 ? '-' : '+');
  }
  void Clear(int cell) {
    To(cell);
    s_ += "[-]";
  }
  template <typename Body>
  void Loop(int cell, Body body) {
    To(cell);
    s_ += '[';
    body();
    To(cell);
    s_ += ']';
  }
  // dsts += src (each), src = 0.
  void MoveTo(int src, std::initializer_list<int> dsts) {
    Loop(src, [&] {
      Add(src, -1);
      for (int d : dsts) Add(d, 1);
    });
  }
  void Out(int cell) {
    To(cell);
    s_ += '.';
  }
  std::string Take() { return std::move(s_); }

 private:
  std::string s_;
  int p_ = 0;
};

}  // namespace

std::string SierpinskiProgram(int width, int rows, int repeat) {
  // Cells: repeat counter, row counter, two temporaries, the output
  // character, then the row a[0..width+1] and the next row b[0..width+1]
  // (a[0], a[width+1] stay 0).
  const int kRepeat = 0, kRows = 1, kT1 = 2, kT2 = 3, kOut = 4, kA = 5, kB = kA + width + 2;
  Gen g;
  g.Add(kRepeat, repeat);
  g.Loop(kRepeat, [&] {
    for (int i = 1; i <= width; ++i) g.Clear(kA + i);
    g.Add(kA + (width + 1) / 2, 1);
    g.Add(kRows, rows);
    g.Loop(kRows, [&] {
      for (int i = 1; i <= width; ++i) {  // out = ' ' + 10 * a[i]: ' ' or '*'
        g.Clear(kOut);
        g.Add(kOut, ' ');
        g.Loop(kA + i, [&] {
          g.Add(kA + i, -1);
          g.Add(kOut, 10);
          g.Add(kT1, 1);
        });
        g.MoveTo(kT1, {kA + i});
        g.Out(kOut);
      }
      g.Clear(kOut);
      g.Add(kOut, '\n');
      g.Out(kOut);
      for (int i = 1; i <= width; ++i) {  // b[i] = a[i-1] xor a[i+1]
        for (int n : {kA + i - 1, kA + i + 1}) {
          g.MoveTo(n, {kT2, kT1});
          g.MoveTo(kT1, {n});
        }
        g.Clear(kB + i);
        g.Loop(kT2, [&] {  // toggle b[i] once per unit of t2
          g.Add(kT2, -1);
          g.Add(kT1, 1);
          g.Loop(kB + i, [&] {
            g.Add(kB + i, -1);
            g.Add(kT1, -1);
          });
          g.MoveTo(kT1, {kB + i});
        });
      }
      for (int i = 1; i <= width; ++i) {
        g.Clear(kA + i);
        g.MoveTo(kB + i, {kA + i});
      }
      g.Add(kRows, -1);
    });
    g.Add(kRepeat, -1);
  });
  g.To(0);
  return g.Take();
}

}  // namespace bf
