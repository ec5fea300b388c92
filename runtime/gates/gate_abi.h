/* Gate ABI: the layout shared by the gate assembly (gate.S) and the C++
 * runtime. Only #defines, so that the assembler can include it.
 *
 * The gate config page is one read-only page of key-0 memory. The gate reads
 * it before its WRPKRU (to know which PKRU value to load), so it cannot live in
 * trusted memory; it is written only during initialisation and then kept
 * PROT_READ (the lockdown forbids changing that). */
#ifndef CORDON_RUNTIME_GATES_GATE_ABI_H_
#define CORDON_RUNTIME_GATES_GATE_ABI_H_

#define CORDON_MAX_DOMAINS 16  /* slot 0 is the untrusted domain; 1..15 have keys */
#define CORDON_TABLE_SIZE 1024 /* entry slots per domain; a power of two */
#define CORDON_TABLE_MASK (CORDON_TABLE_SIZE - 1)
#define CORDON_BUILTIN_COUNT 8 /* ids 0..7 are the runtime's own entries */

/* Exit status of a process stopped by a gate violation (EX_SOFTWARE). */
#define CORDON_VIOLATION_EXIT_CODE 70

/* Gate config page. */
#define CFG_UNTRUSTED_PKRU 0 /* u32: PKRU of untrusted code */
#define CFG_LOCKED 4         /* u32: 1 after cordon_lockdown() */
#define CFG_WIDE_SCRUB 8     /* u32: 1 when the AVX-512 gates are in use */
#define CFG_DOMAIN_COUNT 12  /* u32: highest domain index in use */
#define CFG_SIGBUF_PAGES 16  /* u32: signal-return buffer pages per record slot */
#define CFG_XSTATE_SIZE 20   /* u32: XSAVE bytes in the kernel's signal frames */
#define CFG_PKRU_OFFSET 24   /* u32: offset of PKRU in that XSAVE area */
#define CFG_SIGNAL_ALTSTACK 28 /* u32: 1 when signal frames go to the runtime's alternate stacks */
#define CFG_XFEATURES 32     /* u64: the frames' XSAVE feature mask */
#define CFG_CODE_START 40    /* u64: the code region (runtime/code/): its header */
#define CFG_CODE_END 48      /* u64: one past its last page */
#define CFG_MXCSR_MASK 56    /* u32: the MXCSR bits XRSTOR accepts */
#define CFG_ALTSTACK_PAGES 60 /* u32: alternate signal stack pages per record slot, after the buffer */
#define CFG_DOMAINS 64       /* start of the per-domain array */
#define CFG_DOMAIN_STRIDE 64
#define CFG_SIGNAL_BLOCK_ALL 1088 /* u64: every signal, the set the runtime blocks them with */
/* The die path's record (gate.S, cordon_gate_die): the trusted domain's
 * code builtin (domains::kBuiltinCode) and its audit operation
 * (audit::kOpDieFatal), and the marker that says, in r8, that a death
 * came from that very recording (so it does not try again). */
#define DIE_BUILTIN_CODE 7
#define DIE_AUDIT_OP 0x107
#define DIE_RECORDING_MARKER 0x6469652d72656364 /* "dcer-eid" */
#define CFG_AUDIT_STATE 2136 /* u64: the audit stream's state, 0 when there is none (gate_config.h) */
#define CFG_SIZE 4096
/* Per-domain fields. */
#define DCFG_PKRU 0          /* u32: PKRU inside this domain */
#define DCFG_NRECORDS 4      /* u32: number of per-thread records */
#define DCFG_STRIDE 8        /* u64: bytes between records (guard + stack) */
#define DCFG_RECORDS 16      /* u64: address of record 0 */
#define DCFG_TABLE 24        /* u64: entry table (in the domain's memory) */
#define DCFG_BOOT 32         /* u64: the bootstrap record, used to attach threads */
#define DCFG_STATE 40        /* u64: the domain's state object (in its memory) */
#define DCFG_REGION_START 48 /* u64: first byte of the domain's memory */
#define DCFG_REGION_END 56   /* u64: one past its last byte */

/* A per-thread record sits at the top of that thread's stack in the domain,
 * so the record address is also the initial stack pointer.
 *
 * A record is in use while REC_SAVED_RSP holds the caller's stack pointer,
 * and free while it holds the record's own address: the gate claims it with
 * a CMPXCHG (which writes nothing into a record in use) and then switches
 * stacks (a signal in between rewinds, and the held-claim check lets only
 * the owner's own claim continue), and releases it and switches back with
 * one XCHG (docs/gates.md, docs/signals.md). */
#define REC_SAVED_RSP 0     /* u64: the caller's stack pointer, or the record's address when free */
#define REC_BUSY 8          /* u32: the bootstrap record only: its lock, the holder's thread id or 0 */
#define REC_OWNER 12        /* u32: owning thread id, 0 when free */
#define REC_CALLOUT_RSP 24  /* u64: while a callback runs, the trusted stack pointer to resume */
#define REC_SIGNAL_FRAME 32 /* u64: while a signal handler runs, the trusted signal frame */
#define REC_CALLER_FS 40    /* u64: the gate caller's fs base, loaded again on the way out */
#define REC_SIGNAL_FS 48    /* u64: while a signal handler runs, the fs base it interrupted */
#define REC_TCB 56          /* u64: the record's trusted TCB (domains/trusted_tls.h): fs inside */
/* u64[REC_COUNT_SLOTS]: this record's gate calls, by entry id, then one
 * bucket for the pass-generated gates (docs/gates.md, "Call counts"). The
 * gate adds 1 after the stack switch, on rsp = the record, with one
 * non-locked ADD: only the thread that holds the record writes it. The
 * counts are never reset (a record reused by another thread goes on
 * counting), so their sum over the records is the domain's. */
#define REC_COUNTS 64
#define REC_COUNT_GENERATED CORDON_TABLE_SIZE /* the bucket of the pass-generated gates */
#define REC_COUNT_SLOTS (CORDON_TABLE_SIZE + 2) /* + 1 spare: the record size stays a multiple of 16 */
/* The whole record, counts included: the distance from the record to the
 * end of its slot (the one constant that places the record in its slot:
 * record = slot + stride - REC_SIZE). A multiple of 16, because the
 * record is also the initial stack pointer. */
#define REC_SIZE (REC_COUNTS + 8 * REC_COUNT_SLOTS)

/* Each record's slot, lowest address first: one read-only page of key 0,
 * CFG_SIGBUF_PAGES pages of signal-return buffer, CFG_ALTSTACK_PAGES pages
 * of alternate signal stack (used in domain 1's slots only), the record's
 * TCB area (REC_TCB points into it), a guard page, the stack, and the
 * record (its fields, then its call counts) at the top. */
#define SLOT_READONLY_PAGES 1
#define SLOT_GUARD_PAGES 1

/* The domain's state (DomainState, at the start of its region) begins with
 * the lockdown's system-call token: two u64 words that the seccomp filter
 * requires in r8 and r9 for rt_sigreturn and rt_sigaction. */
#define DSTATE_SIGNAL_TOKEN 0

/* Gate-site table entries (section cordon_gate_sites). */
#define SITE_ENTRY 1           /* the WRPKRU that enters a domain */
#define SITE_EXIT 2            /* the WRPKRU that returns to untrusted code */
#define SITE_CALLOUT 3         /* the WRPKRU that leaves a domain to run a callback */
#define SITE_CALLBACK_RETURN 4 /* the WRPKRU that comes back from the callback */
#define SITE_SIGNAL_ENTER 5    /* a signal interrupted domain code: enter to check the frame */
#define SITE_SIGNAL_LEAVE 6    /* leave the domain to run the program's handler */
#define SITE_SIGNAL_RESUME 7   /* back from that handler: resume the interrupted domain code */
#define SITE_SIGNAL_RETURN 8   /* domain 1, to return from a handler that interrupted untrusted code */
#define SITE_ATTACH 9          /* enters a domain to attach a thread (signals blocked) */
#define SITE_ATTACH_LEAVE 10   /* leaves it after attaching, or to go and attach */
#define SITE_DIE_LEAVE 11      /* the fatal path leaves every domain before its system calls */

/* Signal rewind windows (section cordon_signal_rewinds): three offsets from
 * the entry's own address: the first byte after a WRPKRU into a domain, the
 * last instruction before the stack switch, and the instruction that loads
 * the PKRU value for that WRPKRU. A signal frame whose rip lies in
 * [first, last] resumes at the load, with untrusted PKRU, rcx = rdx = 0. */
#define REWIND_SIZE 12

/* The outbound gate's second argument: where to call, and on which record
 * (both in trusted memory: the caller's trusted stack). */
#define CALLOUT_FN 0
#define CALLOUT_RECORD 8

/* The trusted domain: the first one cordon_init() makes, whose code the
 * runtime itself runs (domains::kTrustedDomain in C++; gate.S still writes
 * DCFG(1, ...)). */
#define CORDON_TRUSTED_DOMAIN 1

#endif
