/*
 * Host-CPU oracle harness: runs test cases natively on the host processor in 32-bit mode and
 * dumps the state they leave. Built by build.sh (gcc -m32 -static); the built binary is committed
 * so the oracle and CI need no compiler. Shares no code with vmxlab's processor.
 *
 * Usage: harness.elf [CASES] — reads cases from the file CASES (or stdin), a stream of cases, each
 *   u32 magic 0x45534143 ("CASE"), u32 gpr[8] (EAX ECX EDX EBX ESP EBP ESI EDI), u32 eflags,
 *   u8 fx[512] (an FXSAVE image, loaded with FXRSTOR), u8 data[DATA_SIZE] (placed at DATA_ADDR),
 *   u32 code_len, u8 code[code_len] (placed at CODE_ADDR; must fall through its end)
 * stdout: per case
 *   u32 magic 0x544c5352 ("RSLT"), u32 signal (0 = ran to its end), u32 vector (the fault's
 *   trap number, from the signal frame), u32 error code, u32 cr2, u32 eip, u32 gpr[8], u32 eflags,
 *   u8 fx[512] (FXSAVE image at the end or at the fault), u8 data[DATA_SIZE]
 *
 * The case's code runs at CPL 3 with flat segments (Linux's 32-bit user segments). Entry: FXRSTOR,
 * POPFD from a scratch slot, then ESP and the other registers from memory, and a jump to the code.
 * After the code, a `jmp [ptr]` reaches vm_exit, which stores ESP before anything else, switches to
 * a scratch stack, and saves EFLAGS, the registers and FXSAVE. A fault arrives as a signal on an
 * alternate stack; the handler takes the state from the signal frame (the kernel's FXSAVE image is
 * the fxsr part of struct _fpstate_32) and longjmps out. SIGALRM (1 s per case) ends runaway code.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#define DATA_ADDR 0x00200000u
#define DATA_SIZE 4096u
#define CODE_ADDR 0x00300000u
#define CODE_PAGE 8192u
#define CODE_MAX (CODE_PAGE - 16u)

uint32_t in_gpr[8], in_eflags, code_entry = CODE_ADDR, host_esp, exit_ptr;
uint32_t out_gpr[8], out_eflags;
uint32_t mxcsr_default = 0x1f80;
uint8_t in_fx[512] __attribute__((aligned(16)));
uint8_t out_fx[512] __attribute__((aligned(16)));
uint32_t scratch_stack[64];

void vm_enter(void);
void vm_exit(void);

__asm__(
  ".intel_syntax noprefix\n"
  ".text\n"
  ".globl vm_enter\n"
  "vm_enter:\n"
  "  push ebp\n  push ebx\n  push esi\n  push edi\n"
  "  mov [host_esp], esp\n"
  "  fxrstor [in_fx]\n"
  "  lea esp, [in_eflags]\n"
  "  popfd\n"
  "  mov esp, [in_gpr+16]\n"
  "  mov eax, [in_gpr+0]\n  mov ecx, [in_gpr+4]\n  mov edx, [in_gpr+8]\n  mov ebx, [in_gpr+12]\n"
  "  mov ebp, [in_gpr+20]\n  mov esi, [in_gpr+24]\n  mov edi, [in_gpr+28]\n"
  "  jmp dword ptr [code_entry]\n"
  ".globl vm_exit\n"
  "vm_exit:\n"
  "  mov [out_gpr+16], esp\n"
  "  lea esp, [scratch_stack+240]\n"
  "  pushfd\n"
  "  pop dword ptr [out_eflags]\n"
  "  mov [out_gpr+0], eax\n  mov [out_gpr+4], ecx\n  mov [out_gpr+8], edx\n  mov [out_gpr+12], ebx\n"
  "  mov [out_gpr+20], ebp\n  mov [out_gpr+24], esi\n  mov [out_gpr+28], edi\n"
  "  fxsave [out_fx]\n"
  "  fninit\n"
  "  ldmxcsr [mxcsr_default]\n"
  "  cld\n"
  "  mov esp, [host_esp]\n"
  "  pop edi\n  pop esi\n  pop ebx\n  pop ebp\n"
  "  ret\n"
  ".att_syntax prefix\n");

static sigjmp_buf jb;
static volatile uint32_t f_sig, f_vec, f_err, f_cr2, f_eip;

static void on_signal(int sig, siginfo_t *si, void *ucv) {
  (void)si;
  ucontext_t *uc = ucv;
  greg_t *g = uc->uc_mcontext.gregs;
  f_sig = (uint32_t)sig;
  f_vec = sig == SIGALRM ? 0xffffffffu : (uint32_t)g[REG_TRAPNO];
  f_err = (uint32_t)g[REG_ERR];
  f_cr2 = (uint32_t)uc->uc_mcontext.cr2;
  f_eip = (uint32_t)g[REG_EIP];
  out_gpr[0] = g[REG_EAX]; out_gpr[1] = g[REG_ECX]; out_gpr[2] = g[REG_EDX]; out_gpr[3] = g[REG_EBX];
  out_gpr[4] = g[REG_ESP]; out_gpr[5] = g[REG_EBP]; out_gpr[6] = g[REG_ESI]; out_gpr[7] = g[REG_EDI];
  out_eflags = g[REG_EFL];
  const uint8_t *fp = (const uint8_t *)uc->uc_mcontext.fpregs;
  /* struct _fpstate_32: 7 u32 + 8 x 10-byte registers, u16 status, u16 magic (0 = fxsr follows). */
  if (fp != NULL && *(const uint16_t *)(fp + 110) == 0) memcpy(out_fx, fp + 112, 512);
  else memset(out_fx, 0xff, 512);
  siglongjmp(jb, 1);
}

static int read_all(void *p, size_t n) {
  size_t got = fread(p, 1, n, stdin);
  return got == n;
}

int main(int argc, char **argv) {
  if (argc > 1 && freopen(argv[1], "rb", stdin) == NULL) { perror(argv[1]); return 2; }
  static uint8_t altstack[65536];
  stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
  if (sigaltstack(&ss, NULL) != 0) { perror("sigaltstack"); return 2; }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGALRM };
  for (unsigned k = 0; k < sizeof sigs / sizeof sigs[0]; k++) sigaction(sigs[k], &sa, NULL);

  uint8_t *data = mmap((void *)DATA_ADDR, DATA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  uint8_t *code = mmap((void *)CODE_ADDR, CODE_PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (data != (void *)DATA_ADDR || code != (void *)CODE_ADDR) { perror("mmap"); return 2; }
  exit_ptr = (uint32_t)(uintptr_t)vm_exit;

  for (;;) {
    uint32_t magic, len;
    if (!read_all(&magic, 4)) break;
    if (magic != 0x45534143u) { fprintf(stderr, "harness: bad case magic 0x%08x\n", magic); return 2; }
    if (!read_all(in_gpr, 32) || !read_all(&in_eflags, 4) || !read_all(in_fx, 512) || !read_all(data, DATA_SIZE) || !read_all(&len, 4)) {
      fprintf(stderr, "harness: truncated case\n"); return 2;
    }
    if (len > CODE_MAX) { fprintf(stderr, "harness: code too long (%u bytes, at most %u)\n", len, CODE_MAX); return 2; }
    memset(code, 0xcc, CODE_PAGE);
    if (!read_all(code, len)) { fprintf(stderr, "harness: truncated code\n"); return 2; }
    /* jmp dword [ptr]; ptr */
    code[len] = 0xff; code[len + 1] = 0x25;
    uint32_t ptr_at = CODE_ADDR + len + 6;
    memcpy(code + len + 2, &ptr_at, 4);
    memcpy(code + len + 6, &exit_ptr, 4);
    __builtin___clear_cache((char *)code, (char *)code + CODE_PAGE);

    f_sig = 0; f_vec = 0; f_err = 0; f_cr2 = 0; f_eip = CODE_ADDR + len;
    struct itimerval it = { .it_interval = { 0, 0 }, .it_value = { 1, 0 } };
    setitimer(ITIMER_REAL, &it, NULL);
    if (sigsetjmp(jb, 1) == 0) vm_enter();
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    __asm__ volatile("fninit\n\tldmxcsr %0\n\tcld" : : "m"(mxcsr_default));

    uint32_t hdr[6] = { 0x544c5352u, f_sig, f_vec, f_err, f_cr2, f_eip };
    fwrite(hdr, 4, 6, stdout);
    fwrite(out_gpr, 4, 8, stdout);
    fwrite(&out_eflags, 4, 1, stdout);
    fwrite(out_fx, 1, 512, stdout);
    fwrite(data, 1, DATA_SIZE, stdout);
  }
  fflush(stdout);
  return 0;
}
