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
#define CFG_DOMAINS 64       /* start of the per-domain array */
#define CFG_DOMAIN_STRIDE 64
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
 * so the record address is also the initial stack pointer. */
#define REC_SAVED_RSP 0 /* u64: the caller's stack pointer (first: the exit pops it) */
#define REC_BUSY 8      /* u32: bit 0 set while a thread runs on this record */
#define REC_OWNER 12    /* u32: owning thread id, 0 when free */
#define REC_STATE 16    /* u32: REC_STATE_CALLOUT while the thread runs a callback */
#define REC_CALLOUT_RSP 24 /* u64: the trusted stack pointer to resume after it */
#define REC_STATE_INSIDE 0
#define REC_STATE_CALLOUT 1
#define REC_SIZE 64

/* Gate-site table entries (section cordon_gate_sites). */
#define SITE_ENTRY 1 /* the WRPKRU that enters a domain */
#define SITE_EXIT 2  /* the WRPKRU that returns to untrusted code */
#define SITE_CALLOUT 3  /* the WRPKRU that leaves a domain to run a callback */
#define SITE_CALLBACK_RETURN 4 /* the WRPKRU that comes back from the callback */

/* The outbound gate's second argument: where to call, and on which record
 * (both in trusted memory: the caller's trusted stack). */
#define CALLOUT_FN 0
#define CALLOUT_RECORD 8

#endif
