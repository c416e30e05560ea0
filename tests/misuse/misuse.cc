// misuse CASE EXPECT: one heap misuse (issue 13, point 3) in a forked child, and what the build
// must do with it. README "Misuse: what each build catches" is the table of these expectations;
// tests/misuse/CMakeLists.txt registers one test per case with the build's expectation.
//
// EXPECT is one of
//   abort:<what>   the child dies by SIGABRT after the one-line diagnostic
//                  "hakmem: <what>: ptr=<the pointer the case misused> ss=... class=..."
//   exit:<outcome> the child returns from the misuse without a "hakmem: " line, and what it
//                  observes afterwards is <outcome> (the documented consequence, e.g.
//                  "duplicate": the next two allocations return the same block)
//
// The child prints "misuse: subject=0x..." (the pointer it is about to misuse) before the
// misuse, and "outcome: <word>" if it returns from it. With HAK_TEST_OVERRIDE the cases call
// the libc names and C++ operators (hakmem's in this program); without it (asan, tsan) the
// C cases call the hak_* API and the C++ cases are not built in.
#include <alloca.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <cstddef>
#include <new>

#include "hak_child.h"
#include "hak_test.h"

#if HAK_TEST_OVERRIDE
#include <malloc.h>
#define M_MALLOC(n) malloc(n)
#define M_FREE(p) free(p)
#define M_TRIM() malloc_trim(0)
#else
#define M_MALLOC(n) hak_malloc(n)
#define M_FREE(p) hak_free(p)
#define M_TRIM() hak_trim()
#endif

namespace {

// Keeps the compiler from reasoning about a pointer (a stack address, a freed block).
void *launder(void *p) {
  void *volatile v = p;
  return v;
}

void subject(const void *p) {
  fprintf(stderr, "misuse: subject=0x%lx\n", (unsigned long)(uintptr_t)p);
  fflush(stderr);
}

// The misusing free: announces the pointer, then frees it.
void bad_free(void *p) {
  subject(p);
  M_FREE(launder(p));
}

unsigned char *live(size_t n) {
  unsigned char *p = static_cast<unsigned char *>(M_MALLOC(n));
  t_check(p != nullptr, "malloc(%zu) returned NULL", n);
  memset(p, 0x11, n);
  return p;
}

// After a double free that was not caught: do the next two allocations of n bytes return the
// same block (the block went onto a free list twice)?
const char *after_double(size_t n) {
  void *a = M_MALLOC(n), *b = M_MALLOC(n);
  t_check(a != nullptr && b != nullptr, "malloc(%zu) returned NULL", n);
  return a == b ? "duplicate" : "distinct";
}

// ---- double frees ----------------------------------------------------------------------------

const size_t kSmall = 48;

const char *double_immediate() {
  unsigned char *p = live(kSmall);
  M_FREE(p);
  bad_free(p);
  return after_double(kSmall);
}

// Other work between the two frees: blocks of other sizes come and go, the freed block stays
// free (nothing of its size is allocated in between).
const char *double_delayed() {
  unsigned char *p = live(kSmall);
  M_FREE(p);
  static void *keep[256];
  const size_t sizes[] = {16, 200, 1000, 5000, 70000};
  for (int round = 0; round < 8; round++)
    for (int i = 0; i < 256; i++) {
      size_t n = sizes[(i + round) % 5];
      if (keep[i] != nullptr) M_FREE(keep[i]);
      keep[i] = live(n);
    }
  bad_free(p);
  return after_double(kSmall);
}

// free(a), free(b), free(a): the block freed twice is not the one freed last.
const char *double_interleaved() {
  unsigned char *a = live(kSmall), *b = live(kSmall);
  M_FREE(a);
  M_FREE(b);
  bad_free(a);
  void *x = M_MALLOC(kSmall), *y = M_MALLOC(kSmall), *z = M_MALLOC(kSmall);
  return x == z || x == y || y == z ? "duplicate" : "distinct";
}

// free(p); p is handed out again (live); the stale pointer is freed twice. The first stale free
// is the free of a live block, the same call as its new owner's free: no allocator can tell
// them apart. The second is the double free of a free block, caught as double_immediate is.
const char *double_reused() {
  unsigned char *p = live(kSmall);
  M_FREE(p);
  unsigned char *q = live(kSmall);
  t_check(q == p, "setup: malloc(%zu) did not hand out the freed block again", kSmall);
  M_FREE(launder(p)); // frees q's block: undetectable
  bad_free(p);
  return after_double(kSmall);
}

// A mid-size block (a slab run of its own size class).
const char *double_mid() {
  unsigned char *p = live(5000);
  M_FREE(p);
  bad_free(p);
  return after_double(5000);
}

// A large block: its mapping is cached with no user, so the second free finds it free.
const char *double_large() {
  unsigned char *p = live(1 << 20);
  M_FREE(p);
  bad_free(p);
  return "returned";
}

// ---- invalid frees ---------------------------------------------------------------------------

const char *invalid_stack() {
  alignas(64) unsigned char frame[256];
  memset(frame, 0x5a, sizeof frame);
  bad_free(frame + 64);
  return "returned";
}

const char *invalid_alloca() {
  unsigned char *a = static_cast<unsigned char *>(alloca(512));
  memset(a, 0x5a, 512);
  bad_free(a);
  return "returned";
}

const char *invalid_interior() {
  bad_free(live(kSmall) + 16);
  return "returned";
}

const char *invalid_interior_mid() {
  bad_free(live(5000) + 1024);
  return "returned";
}

const char *invalid_interior_large() {
  bad_free(live(1 << 20) + 4096);
  return "returned";
}

const char *invalid_unaligned() {
  bad_free(live(kSmall) + 1);
  return "returned";
}

const char *invalid_far() {
  bad_free(live(kSmall) + (size_t(1) << 30));
  return "returned";
}

// glibc's own malloc, found past this program's (hakmem's) malloc.
const char *invalid_foreign_libc() {
  typedef void *(*malloc_fn)(size_t);
  malloc_fn libc_malloc = nullptr;
#if HAK_TEST_OVERRIDE
  libc_malloc = reinterpret_cast<malloc_fn>(dlsym(RTLD_NEXT, "malloc"));
#else
  libc_malloc = &malloc; // the sanitizer's malloc: foreign to hakmem as well
#endif
  t_check(libc_malloc != nullptr, "setup: no malloc past this program's");
  void *p = libc_malloc(64);
  t_check(p != nullptr, "setup: the foreign malloc returned NULL");
  t_check(!hak_owns(p), "setup: hakmem owns the foreign block %p", p);
  bad_free(p);
  return "returned";
}

const char *invalid_foreign_mmap() {
  void *page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  t_check(page != MAP_FAILED, "setup: mmap failed");
  bad_free(page);
  return "returned";
}

// A pointer into a mapping that is gone: the free must not touch it (that would be SIGSEGV).
const char *invalid_closed_mmap() {
  const size_t n = size_t(4) << 20;
  unsigned char *m = static_cast<unsigned char *>(
      mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  t_check(m != MAP_FAILED, "setup: mmap failed");
  t_check(munmap(m, n) == 0, "setup: munmap failed");
  bad_free(m + (size_t(2) << 20));
  return "returned";
}

// hakmem's own closed mapping: a large block freed and its mapping returned to the OS.
const char *invalid_closed_large() {
  unsigned char *p = live(1 << 20);
  M_FREE(p);
  M_TRIM();
  t_check(!hak_owns(p), "setup: the trimmed large block %p is still hakmem's", p);
  bad_free(p);
  return "returned";
}

// ---- a write to a freed block that is later reused --------------------------------------------

const char *uaf_write() {
  unsigned char *p = live(64);
  M_FREE(p);
  subject(p);
  static_cast<volatile unsigned char *>(launder(p))[20] = 'x';
  unsigned char *q = static_cast<unsigned char *>(M_MALLOC(64));
  t_check(q != nullptr, "malloc(64) returned NULL");
  if (q != p) return "not-reused";
  return static_cast<volatile unsigned char *>(launder(q))[20] == 'x' ? "unnoticed" : "overwritten";
}

// ---- C++: delete forms and sizes (hakmem's operators exist only with the override) ------------

#if HAK_TEST_OVERRIDE
// Through volatile function pointers, so that the compiler neither elides a new/delete pair nor
// warns about the mismatch it is asked to make.
void *(*volatile op_new)(size_t) = &::operator new;
void *(*volatile op_new_array)(size_t) = &::operator new[];
void (*volatile op_delete)(void *) noexcept = &::operator delete;
void (*volatile op_delete_array)(void *) noexcept = &::operator delete[];
void (*volatile op_delete_sized)(void *, size_t) noexcept = &::operator delete;
void (*volatile op_delete_array_sized)(void *, size_t) noexcept = &::operator delete[];

// After a misuse that freed the block anyway: is it handed out again (a normal free)?
const char *after_free(void *p, size_t n) {
  void *q = op_new(n);
  return q == p ? "freed" : "not-reused";
}

const char *delete_array_of_new_n(size_t n) {
  void *p = op_new(n);
  subject(p);
  op_delete_array(p);
  return after_free(p, n);
}

const char *delete_array_of_new() { return delete_array_of_new_n(kSmall); }
const char *delete_array_of_new_large() { return delete_array_of_new_n(1 << 20); }

const char *delete_of_new_array() {
  void *p = op_new_array(kSmall);
  subject(p);
  op_delete(p);
  return after_free(p, kSmall);
}

const char *sized_delete_wrong_n(size_t n, size_t wrong) {
  void *p = op_new(n);
  subject(p);
  op_delete_sized(p, wrong);
  return after_free(p, n);
}

// A size of another size class: checkable.
const char *sized_delete_wrong() { return sized_delete_wrong_n(kSmall, 700); }
const char *sized_delete_wrong_large() { return sized_delete_wrong_n(1 << 20, 100); }
// A wrong size in the block's own class: the block does not know its request size.
const char *sized_delete_same_class() { return sized_delete_wrong_n(kSmall, kSmall - 1); }

// What correct and lenient programs do must pass: each new form with its delete form (sized with
// the right size), at every kind of size; free() of a new block and delete of a malloc block
// (mismatched, but glibc accepts them and so does hakmem); the same blocks reused afterwards.
const char *legal_forms() {
  const size_t sizes[] = {0, 1, 16, kSmall, 1000, 1024, 5000, 70000, 262144, 300000, 1 << 20};
  for (int round = 0; round < 3; round++)
    for (size_t n : sizes) {
      void *a = op_new(n), *b = op_new_array(n), *c = op_new(n), *d = op_new_array(n);
      void *e = op_new(n), *f = M_MALLOC(n), *g = op_new_array(n);
      t_check(a && b && c && d && e && f && g, "allocation of %zu failed", n);
      op_delete(a);
      op_delete_array(b);
      op_delete_sized(c, n);
      op_delete_array_sized(d, n);
      M_FREE(e);
      op_delete(f);
      M_FREE(g);
      void *h = op_new(n);
      t_check(h != nullptr, "allocation of %zu failed", n);
      op_delete_sized(h, n);
    }
  void *big = op_new(64);
  void *aligned = ::operator new(100, std::align_val_t(64));
  ::operator delete(aligned, std::align_val_t(64));
  aligned = ::operator new[](100, std::align_val_t(4096));
  ::operator delete[](aligned, 100, std::align_val_t(4096));
  op_delete(big);
  return "ok";
}
#endif

struct misuse_case {
  const char *name;
  const char *(*run)();
};

const misuse_case kCases[] = {
    {"double_immediate", double_immediate},
    {"double_delayed", double_delayed},
    {"double_interleaved", double_interleaved},
    {"double_reused", double_reused},
    {"double_mid", double_mid},
    {"double_large", double_large},
    {"invalid_stack", invalid_stack},
    {"invalid_alloca", invalid_alloca},
    {"invalid_interior", invalid_interior},
    {"invalid_interior_mid", invalid_interior_mid},
    {"invalid_interior_large", invalid_interior_large},
    {"invalid_unaligned", invalid_unaligned},
    {"invalid_far", invalid_far},
    {"invalid_foreign_libc", invalid_foreign_libc},
    {"invalid_foreign_mmap", invalid_foreign_mmap},
    {"invalid_closed_mmap", invalid_closed_mmap},
    {"invalid_closed_large", invalid_closed_large},
    {"uaf_write", uaf_write},
#if HAK_TEST_OVERRIDE
    {"delete_array_of_new", delete_array_of_new},
    {"delete_array_of_new_large", delete_array_of_new_large},
    {"delete_of_new_array", delete_of_new_array},
    {"sized_delete_wrong", sized_delete_wrong},
    {"sized_delete_wrong_large", sized_delete_wrong_large},
    {"sized_delete_same_class", sized_delete_same_class},
    {"legal_forms", legal_forms},
#endif
};

// ---- the parent: run the case in a child, judge how it ended ----------------------------------

char captured[64 * 1024];

// The value after "misuse: subject=" in text, or 0.
uintptr_t subject_of(const char *text) {
  const char *line = t_line_with(text, "misuse: subject=");
  return line ? (uintptr_t)strtoull(line + strlen("misuse: subject="), nullptr, 16) : 0;
}

[[noreturn]] void child(const misuse_case &c, int fds[2]) {
  t_child_stderr_to(fds);
  dup2(STDERR_FILENO, STDOUT_FILENO);
  void *warm = M_MALLOC(32); // hakmem initialised and owning memory before the misuse
  t_check(warm != nullptr, "malloc(32) returned NULL");
  const char *outcome = c.run();
  fprintf(stderr, "outcome: %s\n", outcome);
  fflush(stderr);
  _exit(0);
}

// The first fail-fast diagnostic line at or after text: "hakmem: " not followed by the debug
// ring's lines ("hakmem:   ring[...]") or a one-shot log of a HAKMEM_DEBUG_HDRLESS build
// ("hakmem: [TAG] ...").
const char *diagnostic(const char *text) {
  for (const char *line = text; (line = t_line_with(line, "hakmem: ")) != nullptr; line++)
    if (line[8] != ' ' && line[8] != '[') return line;
  return nullptr;
}

int judge(const char *name, const char *expect, int status) {
  char how[128];
  t_describe_status(status, how, sizeof how);
  printf("--- %s: child output ---\n%s--- end (%s) ---\n", name, captured, how);
  const char *diag = diagnostic(captured);
  uintptr_t subj = subject_of(captured);
  if (strncmp(expect, "abort:", 6) == 0) {
    char want[512];
    snprintf(want, sizeof want, "hakmem: %s: ptr=0x%lx ", expect + 6, (unsigned long)subj);
    t_check(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
            "%s: expected SIGABRT after \"%s\", child %s", name, want, how);
    t_check(subj != 0, "%s: the child never reached its misuse", name);
    t_check(diag != nullptr && strncmp(diag, want, strlen(want)) == 0,
            "%s: expected the diagnostic \"%s...\", got %s", name, want,
            diag ? diag : "no \"hakmem: \" line");
    t_check(diagnostic(diag + 1) == nullptr, "%s: more than one diagnostic line", name);
  } else if (strncmp(expect, "exit:", 5) == 0) {
    char want[256];
    snprintf(want, sizeof want, "outcome: %s\n", expect + 5);
    t_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: expected exit 0, child %s",
            name, how);
    t_check(diag == nullptr, "%s: unexpected diagnostic %s", name, diag);
    const char *got = t_line_with(captured, "outcome: ");
    t_check(got != nullptr && strncmp(got, want, strlen(want)) == 0,
            "%s: expected \"%s\", got \"%.60s\"", name, expect + 5, got ? got : "no outcome");
  } else {
    t_fail("%s: bad expectation \"%s\"", name, expect);
  }
  printf("PASS: %s: %s\n", name, expect);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (const misuse_case &c : kCases) printf("%s\n", c.name);
    return 0;
  }
  if (argc != 3) {
    fprintf(stderr, "usage: misuse CASE abort:<what>|exit:<outcome>  |  misuse --list\n");
    return 2;
  }
  const misuse_case *c = nullptr;
  for (const misuse_case &k : kCases)
    if (strcmp(k.name, argv[1]) == 0) c = &k;
  t_check(c != nullptr, "unknown case '%s' (misuse --list)", argv[1]);
  int fds[2];
  t_check(pipe(fds) == 0, "pipe failed");
  fflush(nullptr);
  pid_t pid = fork();
  t_check(pid >= 0, "fork failed");
  if (pid == 0) child(*c, fds);
  close(fds[1]);
  t_read_all(fds[0], captured, sizeof captured);
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) t_check(errno == EINTR, "waitpid failed");
  return judge(c->name, argv[2], status);
}
