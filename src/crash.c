/* The crash report (HAKMEM_CRASH_REPORT=1): what a failing run says about itself.
 *
 * Responsibility: on SIGSEGV, SIGBUS, SIGABRT, SIGILL and SIGFPE, write to stderr, without
 * allocating,
 *   hakmem: crash report: SIGSEGV (SEGV_MAPERR) at 0x... thread 1234 ip=0x...
 *   hakmem: address 0x...: <what the address is to hakmem>
 *   hakmem: registers: ...
 *   hakmem: backtrace (faulting frame first):
 *   hakmem:   #0 0x... hak_rq_free_mt+0x3c (libhakmem.so)
 *   hakmem: debug ring (last events, oldest first):
 *   hakmem:   ring[...] ...
 *   hakmem: crash report end: SIGSEGV re-raised
 * then let the signal take its default action, so the exit status and the core dump are those
 * of the crash itself. With HAKMEM_CRASH_DIR the process moves there first (a core_pattern
 * relative to the working directory lands there); with HAKMEM_CRASH_GCORE=1 it also has gcore
 * write DIR/core.<pid> (for systems whose core_pattern pipes cores elsewhere).
 *
 * What an address is: the registry says whether a live SuperSlab or large mapping holds it;
 * for a SuperSlab the offset says header, run metadata (which field), or which block of which
 * run, and the slab's state says bound or released. Addresses of SuperSlabs and large mappings
 * that hakmem unmapped are kept in a small ring (the graveyard, filled on every unmap), so a
 * late access to an unmapped SuperSlab is named as such.
 *
 * Boundary: hak_crash_init() at process start, hak_crash_note_unmap() from the two unmap
 * paths, hak_crash_describe() (also for tests). The handler itself is installed and re-raised
 * by os.c.
 *
 * Invariants and limits: the handler allocates nothing and takes no hakmem lock (the crash may
 * have happened under one); it reads metadata only of regions the registry still lists (they
 * are mapped) or, for the graveyard, computes from the offset alone. Only the first fatal
 * signal is reported (os.c): a second one in the reporting thread ends the process at once;
 * another thread's waits in its handler until the reporter ends the process. The unwinder and
 * dladdr are not async-signal-safe in theory (they may take the loader's lock); a crash inside
 * the dynamic loader may then hang instead of reporting. There is no alternate signal stack: a
 * stack overflow ends without a report. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <signal.h>
#include <stddef.h>
#include <unwind.h>

#include "internal.h"
#include "tiny/registry.h"
#include "tiny/remote_queue.h"

/* ---- the graveyard: regions hakmem unmapped --------------------------------------------- */

#define GRAVE_SLOTS 128 /* power of two */

typedef struct grave_s {
  _Atomic(uintptr_t) base; /* 0: empty slot                                                 */
  _Atomic(size_t) size;
  _Atomic(unsigned) kind; /* enum hak_region_kind it had                                    */
} grave_t;

static grave_t graves[GRAVE_SLOTS];
static _Atomic(uint64_t) grave_next; /* unmaps noted so far */

/* Slow path (an unmap). A racing pair of writers may mix one slot: the ring is for humans. */
void hak_crash_note_unmap(const void *base, size_t size, unsigned kind) {
  uint64_t i = atomic_fetch_add_explicit(&grave_next, 1, hak_relaxed) & (GRAVE_SLOTS - 1);
  atomic_store_explicit(&graves[i].base, 0, hak_relaxed);
  atomic_store_explicit(&graves[i].size, size, hak_relaxed);
  atomic_store_explicit(&graves[i].kind, kind, hak_relaxed);
  atomic_store_explicit(&graves[i].base, (uintptr_t)base, memory_order_release);
}

/* ---- what an address is ----------------------------------------------------------------- */

/* The field of a slab's metadata at offset off (types.h, struct hak_slab_s). */
static const char *slab_field(size_t off) {
  static const struct {
    size_t off;
    const char *name;
  } fields[] = {
      /* in the order of the struct: the last one at or below off names it */
      {offsetof(hak_slab_t, freelist), "freelist"}, {offsetof(hak_slab_t, data), "data"},
      {offsetof(hak_slab_t, div_inv), "div_inv"},   {offsetof(hak_slab_t, stride), "stride"},
      {offsetof(hak_slab_t, capacity), "capacity"}, {offsetof(hak_slab_t, used), "used"},
      {offsetof(hak_slab_t, class_idx), "class_idx"}, {offsetof(hak_slab_t, head), "head"},
      {offsetof(hak_slab_t, nslabs), "nslabs"},     {offsetof(hak_slab_t, state), "state"},
      {offsetof(hak_slab_t, list), "list"},         {offsetof(hak_slab_t, div_shift), "div_shift"},
      {offsetof(hak_slab_t, head_off), "head_off"}, {offsetof(hak_slab_t, class4), "class4"},
      {offsetof(hak_slab_t, carved), "carved"},
      {offsetof(hak_slab_t, owner), "owner"},       {offsetof(hak_slab_t, remote), "remote"},
      {offsetof(hak_slab_t, next), "next"},         {offsetof(hak_slab_t, prev), "prev"},
      {offsetof(hak_slab_t, recip), "recip"},
  };
  const char *name = "padding";
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (off >= fields[i].off) name = fields[i].name;
  return name;
}

/* Where offset off of a SuperSlab falls, from the layout alone: header, run metadata, data. */
static void ss_layout(hak_buf_t *b, size_t off) {
  size_t slabs = offsetof(hak_superslab_t, slabs);
  if (off < slabs) {
    hak_buf_str(b, "its header");
  } else if (off < sizeof(hak_superslab_t)) {
    hak_buf_str(b, "metadata of slab ");
    hak_buf_u64(b, (off - slabs) / sizeof(hak_slab_t));
    hak_buf_str(b, " (field ");
    hak_buf_str(b, slab_field((off - slabs) % sizeof(hak_slab_t)));
    hak_buf_str(b, ")");
  } else {
    hak_buf_str(b, "the data of slab ");
    hak_buf_u64(b, off >> HAK_SLAB_SHIFT);
  }
}

static void run_owner(hak_buf_t *b, const hak_slab_t *m) {
  uintptr_t w = atomic_load_explicit(&m->remote, hak_relaxed);
  hak_tcache_t *owner = atomic_load_explicit(&m->owner, hak_relaxed);
  if (owner != NULL) {
    hak_buf_str(b, ", owned by cache ");
    hak_buf_hex(b, (uintptr_t)owner);
  } else if (w & HAK_RQ_PUBLISHED) {
    hak_buf_str(b, ", orphaned and published");
  } else if (w & HAK_RQ_ORPHAN) {
    hak_buf_str(b, ", orphaned");
  } else {
    hak_buf_str(b, ", no owner");
  }
}

/* A data address of a registered SuperSlab: which block of which run, or a released slab. */
static void ss_data(hak_buf_t *b, hak_superslab_t *ss, uintptr_t a) {
  unsigned i = (unsigned)((a - (uintptr_t)ss) >> HAK_SLAB_SHIFT);
  const hak_slab_t *s = &ss->slabs[i];
  if (s->state == HAK_SLAB_FREE || (ss->free_mask >> i & 1)) {
    hak_buf_str(b, "slab ");
    hak_buf_u64(b, i);
    hak_buf_str(b, ", released (no run: nothing of it may be in use)");
    return;
  }
  const hak_slab_t *m = hak_run_in(ss, a);
  uint32_t carved = atomic_load_explicit(&m->carved, hak_relaxed);
  hak_buf_str(b, "run at slab ");
  hak_buf_u64(b, (uint64_t)(m - ss->slabs));
  hak_buf_str(b, ", class ");
  hak_buf_u64(b, m->class_idx);
  hak_buf_str(b, " (stride ");
  hak_buf_u64(b, m->stride);
  hak_buf_str(b, "), ");
  if (a < (uintptr_t)m->data || m->stride == 0) {
    hak_buf_str(b, "before its first block");
  } else {
    uint64_t off = a - (uintptr_t)m->data, idx = off / m->stride;
    hak_buf_str(b, "block ");
    hak_buf_u64(b, idx);
    hak_buf_str(b, " + ");
    hak_buf_u64(b, off % m->stride);
    hak_buf_str(b, idx < carved ? " (carved)" : idx < m->capacity ? " (never carved)"
                                                                   : " (past the run's end)");
  }
  hak_buf_str(b, ", ");
  hak_buf_u64(b, m->used);
  hak_buf_str(b, " of ");
  hak_buf_u64(b, carved);
  hak_buf_str(b, " carved blocks out");
  run_owner(b, m);
}

static void live_ss(hak_buf_t *b, hak_superslab_t *ss, uintptr_t a) {
  hak_buf_str(b, "SuperSlab ");
  hak_buf_hex(b, (uintptr_t)ss);
  if (ss->magic != (HAK_SS_MAGIC ^ (uintptr_t)ss)) {
    hak_buf_str(b, " (registered, magic corrupt), ");
    ss_layout(b, a - (uintptr_t)ss);
    return;
  }
  hak_buf_str(b, ss->free_mask == (uint32_t)((1ull << HAK_SLABS_PER_SS) - 1) ? " (empty), "
                                                                             : " (live), ");
  if (a - (uintptr_t)ss < sizeof(hak_superslab_t))
    ss_layout(b, a - (uintptr_t)ss);
  else
    ss_data(b, ss, a);
}

static void large(hak_buf_t *b, const hak_large_t *h, uintptr_t a) {
  hak_buf_str(b, "large mapping ");
  hak_buf_hex(b, (uintptr_t)h->map);
  hak_buf_str(b, " of ");
  hak_buf_u64(b, h->map_size);
  hak_buf_str(b, " bytes, ");
  if (h->user == NULL) {
    hak_buf_str(b, "cached (freed, kept for reuse)");
  } else if (a < (uintptr_t)h->user) {
    hak_buf_str(b, "its header, before the block ");
    hak_buf_hex(b, (uintptr_t)h->user);
  } else {
    hak_buf_str(b, "offset ");
    hak_buf_u64(b, a - (uintptr_t)h->user);
    hak_buf_str(b, " of the block ");
    hak_buf_hex(b, (uintptr_t)h->user);
    hak_buf_str(b, a - (uintptr_t)h->user < h->usable ? " (in use)" : " (past its end)");
  }
}

/* A large mapping spans many regions; only its first is registered. */
#define LARGE_WALK 1024 /* regions looked back: 2 GiB */

static const hak_large_t *large_containing(uintptr_t a) {
  uintptr_t region = a & ~(uintptr_t)HAK_SS_MASK;
  for (unsigned n = 0; n < LARGE_WALK && region >= HAK_SS_SIZE; n++, region -= HAK_SS_SIZE) {
    unsigned kind = hak_registry_kind(region);
    if (kind == HAK_REGION_SS) return NULL;
    if (kind != HAK_REGION_LARGE && kind != HAK_REGION_LARGE_FAR) continue;
    const hak_large_t *h = hak_large_header_at(region, (int)kind);
    if (h->magic != (HAK_LARGE_MAGIC ^ (uintptr_t)h)) return NULL;
    return a < (uintptr_t)h->map + h->map_size ? h : NULL;
  }
  return NULL;
}

/* The most recent unmapped region that held a, from the graveyard. */
static bool graveyard(hak_buf_t *b, uintptr_t a) {
  uint64_t end = atomic_load_explicit(&grave_next, hak_relaxed);
  for (uint64_t k = 0; k < GRAVE_SLOTS && k < end; k++) {
    const grave_t *g = &graves[(end - 1 - k) & (GRAVE_SLOTS - 1)];
    uintptr_t base = atomic_load_explicit(&g->base, memory_order_acquire);
    if (base == 0 || a < base || a - base >= atomic_load_explicit(&g->size, hak_relaxed))
      continue;
    bool ss = atomic_load_explicit(&g->kind, hak_relaxed) == HAK_REGION_SS;
    hak_buf_str(b, ss ? "unmapped SuperSlab " : "unmapped large mapping ");
    hak_buf_hex(b, base);
    hak_buf_str(b, " (hakmem unmapped it; ");
    hak_buf_u64(b, k);
    hak_buf_str(b, " unmaps since), ");
    if (ss) {
      ss_layout(b, a - base);
    } else {
      hak_buf_str(b, "offset ");
      hak_buf_u64(b, a - base);
    }
    hak_buf_str(b, ": a use after the region was released");
    return true;
  }
  return false;
}

size_t hak_crash_describe(uintptr_t a, char *out, size_t n) {
  hak_buf_t b = {out, out + n - 1};
  unsigned kind = hak_registry_kind(a);
  const hak_large_t *h;
  if (a >> HAK_ADDR_BITS) {
    hak_buf_str(&b, "not a user-space address (a corrupt pointer)");
  } else if (kind == HAK_REGION_SS) {
    live_ss(&b, hak_ss_of((const void *)a), a);
  } else if ((h = large_containing(a)) != NULL) {
    large(&b, h, a);
  } else if (!graveyard(&b, a)) {
    hak_buf_str(&b, a < HAK_PAGE_SIZE ? "not hakmem's (a null pointer dereference)"
                                      : "not hakmem's (no live or recently unmapped region)");
  }
  *b.p = '\0';
  return (size_t)(b.p - out);
}

/* ---- the report ---------------------------------------------------------------------------- */

static const char *signal_name(int sig) {
  switch (sig) {
  case SIGSEGV: return "SIGSEGV";
  case SIGBUS: return "SIGBUS";
  case SIGABRT: return "SIGABRT";
  case SIGILL: return "SIGILL";
  case SIGFPE: return "SIGFPE";
  default: return "signal";
  }
}

static const char *code_name(int sig, int code) {
  if (code == SI_USER) return "sent by kill";
  if (code == SI_TKILL) return "sent by tgkill/raise";
  if (code == SI_KERNEL) return "general protection: a non-canonical address, not reported";
  if (sig == SIGSEGV && code == SEGV_MAPERR) return "SEGV_MAPERR: nothing mapped there";
  if (sig == SIGSEGV && code == SEGV_ACCERR) return "SEGV_ACCERR: mapped, access not allowed";
  if (sig == SIGBUS && code == BUS_ADRERR) return "BUS_ADRERR: past the end of a file mapping";
  if (sig == SIGBUS && code == BUS_ADRALN) return "BUS_ADRALN: misaligned";
  return "si_code";
}

static void say(hak_buf_t *b, char *start) {
  hak_buf_str(b, "\n");
  hak_write_err(start, (size_t)(b->p - start));
  b->p = start;
}

static void header_line(const hak_fault_t *f) {
  char buf[512];
  hak_buf_t b = {buf, buf + sizeof buf - 1};
  hak_buf_str(&b, "hakmem: crash report: ");
  hak_buf_str(&b, signal_name(f->sig));
  hak_buf_str(&b, " (");
  hak_buf_str(&b, code_name(f->sig, f->code));
  hak_buf_str(&b, ") at ");
  hak_buf_hex(&b, f->addr);
  hak_buf_str(&b, " thread ");
  hak_buf_u64(&b, (uint64_t)f->tid);
  hak_buf_str(&b, f->tid == hak_os_getpid() ? " (main)" : "");
  hak_buf_str(&b, " ip=");
  hak_buf_hex(&b, f->ip);
  say(&b, buf);
  if (f->sig == SIGABRT || !f->from_kernel || f->code == SI_KERNEL) return;
  char what[400];
  hak_crash_describe(f->addr, what, sizeof what);
  hak_buf_str(&b, "hakmem: address ");
  hak_buf_hex(&b, f->addr);
  hak_buf_str(&b, ": ");
  hak_buf_str(&b, what);
  say(&b, buf);
}

static void registers(const hak_fault_t *f) {
  static const char *const names[16] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                        "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  if (f->ip == 0) return;
  char buf[256];
  hak_buf_t b = {buf, buf + sizeof buf - 1};
  for (int row = 0; row < 4; row++) {
    hak_buf_str(&b, "hakmem: registers:");
    for (int i = row * 4; i < row * 4 + 4; i++) {
      hak_buf_str(&b, " ");
      hak_buf_str(&b, names[i]);
      hak_buf_str(&b, "=");
      hak_buf_hex(&b, f->regs[i]);
    }
    say(&b, buf);
  }
}

#define BT_MAX 48

typedef struct bt_s {
  uintptr_t ip[BT_MAX];
  int n;
} bt_t;

static _Unwind_Reason_Code bt_step(struct _Unwind_Context *ctx, void *arg) {
  bt_t *bt = arg;
  if (bt->n == BT_MAX) return _URC_END_OF_STACK;
  uintptr_t ip = (uintptr_t)_Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  bt->ip[bt->n++] = ip;
  return _URC_NO_REASON;
}

static void frame_line(int i, uintptr_t ip) {
  char buf[HAK_PATH_MAX + 256];
  hak_buf_t b = {buf, buf + sizeof buf - 1};
  hak_buf_str(&b, "hakmem:   #");
  hak_buf_u64(&b, (uint64_t)i);
  hak_buf_str(&b, " ");
  hak_buf_hex(&b, ip);
  Dl_info info;
  if (dladdr((void *)ip, &info) != 0) {
    if (info.dli_sname != NULL) {
      hak_buf_str(&b, " ");
      hak_buf_str(&b, info.dli_sname);
      hak_buf_str(&b, "+");
      hak_buf_hex(&b, ip - (uintptr_t)info.dli_saddr);
    }
    if (info.dli_fname != NULL) { /* the offset is what addr2line -e FILE wants */
      hak_buf_str(&b, " (");
      hak_buf_str(&b, info.dli_fname);
      hak_buf_str(&b, "+");
      hak_buf_hex(&b, ip - (uintptr_t)info.dli_fbase);
      hak_buf_str(&b, ")");
    }
  }
  say(&b, buf);
}

/* The frames from the interrupted instruction outwards; the handler's own frames (and the
 * kernel's signal trampoline) are skipped when the unwinder finds the interrupted ip. */
static void backtrace_lines(const hak_fault_t *f) {
  static bt_t bt; /* one report at a time (crashing) */
  bt.n = 0;
  _Unwind_Backtrace(bt_step, &bt);
  int first = 0;
  for (int i = 0; i < bt.n; i++)
    if (bt.ip[i] == f->ip) {
      first = i;
      break;
    }
  static const char head[] = "hakmem: backtrace (the interrupted frame first):\n";
  hak_write_err(head, sizeof head - 1);
  for (int i = first; i < bt.n; i++) frame_line(i - first, bt.ip[i]);
}

static char core_prefix[HAK_PATH_MAX + 8]; /* DIR/core, for gcore */

static void gcore(void) {
  char pid[24];
  hak_buf_t b = {pid, pid + sizeof pid - 1};
  hak_buf_u64(&b, (uint64_t)hak_os_getpid());
  *b.p = '\0';
  char *argv[] = {"gcore", "-o", core_prefix, pid, NULL};
  char *envp[] = {"PATH=/usr/bin:/bin", NULL};
  static const char *const paths[] = {"/usr/bin/gcore", "/usr/local/bin/gcore", "/bin/gcore"};
  int status = -1;
  for (size_t i = 0; i < sizeof paths / sizeof paths[0] && status != 0; i++)
    status = hak_os_run_wait(paths[i], argv, envp);
  char buf[HAK_PATH_MAX + 128];
  b = (hak_buf_t){buf, buf + sizeof buf - 1};
  hak_buf_str(&b, status == 0 ? "hakmem: core written by gcore: " : "hakmem: gcore failed: ");
  hak_buf_str(&b, core_prefix);
  hak_buf_str(&b, ".");
  hak_buf_str(&b, pid);
  say(&b, buf);
}

static void crash_report(const hak_fault_t *f) {
  header_line(f);
  registers(f);
  backtrace_lines(f);
  static const char ring[] = "hakmem: debug ring (last events, oldest first):\n";
  hak_write_err(ring, sizeof ring - 1);
  hak_ring_dump();
  if (hak_opt.crash_gcore) gcore();
  if (hak_opt.crash_dir[0] != '\0' && !hak_os_chdir(hak_opt.crash_dir))
    hak_warn("HAKMEM_CRASH_DIR: cannot enter", hak_opt.crash_dir);
  char buf[96];
  hak_buf_t b = {buf, buf + sizeof buf - 1};
  hak_buf_str(&b, "hakmem: crash report end: ");
  hak_buf_str(&b, signal_name(f->sig));
  hak_buf_str(&b, " re-raised");
  say(&b, buf);
}

static _Unwind_Reason_Code bt_nothing(struct _Unwind_Context *ctx, void *arg) {
  (void)ctx;
  (void)arg;
  return _URC_END_OF_STACK;
}

void hak_crash_init(void) {
  if (!hak_opt.crash_report) return;
  hak_buf_t b = {core_prefix, core_prefix + sizeof core_prefix - 1};
  hak_buf_str(&b, hak_opt.crash_dir[0] != '\0' ? hak_opt.crash_dir : ".");
  hak_buf_str(&b, "/core");
  *b.p = '\0';
  /* The unwinder sets itself up on its first use; let that happen now, not in the handler. */
  _Unwind_Backtrace(bt_nothing, NULL);
  hak_os_catch_fatal(crash_report);
}
