/* edgebuild simavr runner: load an AVR ELF (flash + .eeprom), talk to the edgebuild device
 * harness over UART0 and record outputs, device-measured cycles and simulator cycles.
 *
 * usage: simrunner ELF MCU F_CPU IN_SIZE OUT_SIZE INPUTS.bin RESULTS.bin MAX_CYCLES
 *
 * INPUTS.bin: N * IN_SIZE int8 bytes. RESULTS.bin: per vector OUT_SIZE bytes, u32 device
 * cycles, u64 simulator cycles (between the GPIOR markers, minus the empty calibration call);
 * then u32 stack bytes and u64 total simulated cycles; then u16 L and L x u64: simulator cycles
 * per model layer summed over all vectors (from the layer marks). All little endian.
 * MAX_CYCLES bounds every wait for the device (ready, each reply): exceeding it is a hang.
 * Exit status: 0 ok, 2 usage/load error, 3 protocol error, 4 timeout, 5 firmware crashed.
 * Diagnostics go to stderr prefixed with "simrunner:"; simavr's own chatter goes to stdout.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_elf.h"
#include "sim_io.h"
#include "sim_irq.h"

#include "protocol.h"

enum phase { WAIT_READY, WAIT_OUTPUT, WAIT_STACK, DONE };
enum { EXIT_USAGE = 2, EXIT_PROTOCOL = 3, EXIT_TIMEOUT = 4, EXIT_CRASH = 5 };
#define RX_MAX 8192

typedef struct runner {
    avr_t *avr;
    avr_irq_t *uart_in;
    long in_size, out_size, n;
    const int8_t *inputs;
    uint8_t *results;      /* N records + trailer, see the header */
    size_t record_size;
    uint8_t tx[RX_MAX];    /* frame being sent to the device */
    size_t tx_len, tx_pos;
    int xoff;
    uint8_t rx[RX_MAX];    /* frame being received from the device */
    size_t rx_len;
    enum phase phase;
    long vec;
    uint64_t deadline, max_cycles;
    uint64_t mark_start;
    uint64_t last_mark;    /* cycle of the previous start or layer mark */
    uint64_t layer_sum[EB_MAX_LAYERS];
    long n_layers;
    uint64_t *marks;       /* marks[0] = empty calibration call, marks[k+1] = vector k */
    long n_marks;
    uint32_t stack_bytes;
    int exit_code;
} runner_t;

static void fail(runner_t *r, int code, const char *fmt, ...)
{
    if (r->exit_code)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "simrunner: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    r->exit_code = code;
}

static uint16_t crc_update(uint16_t crc, uint8_t data)
{
    crc ^= data;
    for (int i = 0; i < 8; i++)
        crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0x8408) : (uint16_t)(crc >> 1);
    return crc;
}

static uint16_t crc_block(const uint8_t *p, size_t len)
{
    uint16_t crc = EB_CRC_INIT;
    for (size_t i = 0; i < len; i++)
        crc = crc_update(crc, p[i]);
    return crc;
}

static uint32_t le(const uint8_t *p, int bytes)
{
    uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Push queued bytes into the UART while its input FIFO has room. */
static void feed(runner_t *r)
{
    while (r->tx_pos < r->tx_len && !r->xoff)
        avr_raise_irq(r->uart_in, r->tx[r->tx_pos++]);
}

static void send_frame(runner_t *r, uint8_t kind, const int8_t *payload, long len)
{
    r->tx[0] = EB_SYNC0;
    r->tx[1] = EB_SYNC1;
    r->tx[2] = kind;
    if (len)
        memcpy(r->tx + 3, payload, (size_t)len);
    uint16_t crc = crc_block(r->tx + 2, (size_t)len + 1);
    put_le(r->tx + 3 + len, crc, 2);
    r->tx_len = (size_t)len + 5;
    r->tx_pos = 0;
    r->deadline = r->avr->cycle + r->max_cycles;
    feed(r);
}

static void send_next(runner_t *r)
{
    if (r->vec < r->n) {
        r->phase = WAIT_OUTPUT;
        send_frame(r, EB_KIND_INFER, r->inputs + r->vec * r->in_size, r->in_size);
    } else {
        r->phase = WAIT_STACK;
        send_frame(r, EB_KIND_STACK, NULL, 0);
    }
}

static void on_mark(avr_t *avr, avr_io_addr_t addr, uint8_t v, void *param)
{
    runner_t *r = param;
    avr->data[addr] = v;
    if (v == EB_MARK_START) {
        r->mark_start = r->last_mark = avr->cycle;
    } else if (v >= EB_MARK_LAYER_BASE && v < EB_MARK_LAYER_BASE + EB_MAX_LAYERS) {
        long i = v - EB_MARK_LAYER_BASE;
        r->layer_sum[i] += avr->cycle - r->last_mark;
        r->last_mark = avr->cycle;
        if (i + 1 > r->n_layers)
            r->n_layers = i + 1;
    } else if (v == EB_MARK_STOP && r->n_marks <= r->n) {
        r->marks[r->n_marks++] = avr->cycle - r->mark_start;
    }
}

static const char *phase_name(enum phase p)
{
    switch (p) {
    case WAIT_READY: return "the ready frame";
    case WAIT_OUTPUT: return "an output frame";
    case WAIT_STACK: return "the stack frame";
    default: return "nothing";
    }
}

static long payload_size(runner_t *r, uint8_t kind)
{
    if (r->phase == WAIT_READY && kind == EB_KIND_READY)
        return 6;
    if (r->phase == WAIT_OUTPUT && kind == EB_KIND_OUTPUT)
        return r->out_size + 4;
    if (r->phase == WAIT_STACK && kind == EB_KIND_STACK)
        return 2;
    if (kind == EB_KIND_ERROR)
        return 0;
    return -1;
}

static void handle_frame(runner_t *r, uint8_t kind, const uint8_t *p)
{
    if (kind == EB_KIND_ERROR) {
        fail(r, EXIT_PROTOCOL, "device rejected the host frame for vector %ld (checksum "
             "mismatch seen by the device)", r->vec);
        return;
    }
    if (kind == EB_KIND_READY) {
        long in = le(p, 2), out = le(p + 2, 2);
        if (in != r->in_size || out != r->out_size) {
            fail(r, EXIT_PROTOCOL, "firmware model sizes are input %ld / output %ld bytes, "
                 "expected %ld / %ld", in, out, r->in_size, r->out_size);
            return;
        }
        avr_register_io_write(r->avr, (avr_io_addr_t)le(p + 4, 2), on_mark, r);
        send_next(r);
    } else if (kind == EB_KIND_OUTPUT) {
        if (r->n_marks != r->vec + 2) {
            fail(r, EXIT_PROTOCOL, "vector %ld: expected %ld cycle markers, saw %ld", r->vec,
                 r->vec + 2, r->n_marks);
            return;
        }
        uint8_t *rec = r->results + (size_t)r->vec * r->record_size;
        memcpy(rec, p, (size_t)r->out_size);
        memcpy(rec + r->out_size, p + r->out_size, 4);
        put_le(rec + r->out_size + 4, r->marks[r->vec + 1] - r->marks[0], 8);
        r->vec++;
        send_next(r);
    } else {
        r->stack_bytes = le(p, 2);
        r->phase = DONE;
    }
}

static void on_byte(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    runner_t *r = param;
    if (r->exit_code || r->phase == DONE)
        return;
    uint8_t b = (uint8_t)value;
    if ((r->rx_len == 0 && b != EB_SYNC0) || (r->rx_len == 1 && b != EB_SYNC1)) {
        fail(r, EXIT_PROTOCOL, "corrupted frame from device: byte 0x%02x at frame offset %zu "
             "is not the sync sequence (waiting for %s, vector %ld)", b, r->rx_len,
             phase_name(r->phase), r->vec);
        return;
    }
    r->rx[r->rx_len++] = b;
    if (r->rx_len < 3)
        return;
    long payload = payload_size(r, r->rx[2]);
    if (payload < 0) {
        fail(r, EXIT_PROTOCOL, "corrupted frame from device: unexpected frame kind 0x%02x "
             "while waiting for %s (vector %ld)", r->rx[2], phase_name(r->phase), r->vec);
        return;
    }
    size_t total = (size_t)payload + 5;
    if (r->rx_len < total)
        return;
    uint16_t want = crc_block(r->rx + 2, (size_t)payload + 1);
    uint16_t got = (uint16_t)le(r->rx + 3 + payload, 2);
    r->rx_len = 0;
    if (want != got) {
        fail(r, EXIT_PROTOCOL, "corrupted frame from device: CRC 0x%04x, computed 0x%04x "
             "(%s, vector %ld)", got, want, phase_name(r->phase), r->vec);
        return;
    }
    handle_frame(r, r->rx[2], r->rx + 3);
}

static void on_xon(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    runner_t *r = param;
    r->xoff = 0;
    feed(r);
}

static void on_xoff(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    runner_t *r = param;
    r->xoff = value != 0;
}

/* avr-libc's exit(): interrupts off and `rjmp .-2` forever (main returned). */
static int stuck_in_exit_loop(const avr_t *avr)
{
    const uint16_t rjmp_self = 0xCFFF;
    uint16_t opcode = (uint16_t)(avr->flash[avr->pc] | (avr->flash[avr->pc + 1] << 8));
    return !avr->sreg[S_I] && opcode == rjmp_self;
}

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)len;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: %s ELF MCU F_CPU IN_SIZE OUT_SIZE INPUTS RESULTS MAX_CYCLES\n",
                argv[0]);
        return EXIT_USAGE;
    }
    static runner_t run;
    runner_t *r = &run;
    r->in_size = strtol(argv[4], NULL, 10);
    r->out_size = strtol(argv[5], NULL, 10);
    r->max_cycles = strtoull(argv[8], NULL, 10);
    if (r->in_size <= 0 || r->out_size <= 0 || r->in_size + 5 > RX_MAX ||
        r->out_size + 9 > RX_MAX) {
        fprintf(stderr, "simrunner: bad sizes %ld/%ld (max %d)\n", r->in_size, r->out_size,
                RX_MAX - 9);
        return EXIT_USAGE;
    }
    size_t in_bytes;
    r->inputs = (const int8_t *)read_file(argv[6], &in_bytes);
    if (!r->inputs || in_bytes % (size_t)r->in_size) {
        fprintf(stderr, "simrunner: cannot read %s as N x %ld bytes\n", argv[6], r->in_size);
        return EXIT_USAGE;
    }
    r->n = (long)(in_bytes / (size_t)r->in_size);
    r->record_size = (size_t)r->out_size + 12;
    r->results = calloc((size_t)r->n * r->record_size + 12, 1);
    r->marks = calloc((size_t)r->n + 2, sizeof *r->marks);

    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(argv[1], &fw) != 0) {
        fprintf(stderr, "simrunner: cannot load ELF %s\n", argv[1]);
        return EXIT_USAGE;
    }
    r->avr = avr_make_mcu_by_name(argv[2]);
    if (!r->avr) {
        fprintf(stderr, "simrunner: simavr does not know the MCU '%s'\n", argv[2]);
        return EXIT_USAGE;
    }
    avr_init(r->avr);
    r->avr->frequency = (uint32_t)strtoul(argv[3], NULL, 10);
    avr_load_firmware(r->avr, &fw);
    r->avr->frequency = (uint32_t)strtoul(argv[3], NULL, 10);

    uint32_t flags = 0;
    avr_ioctl(r->avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~(uint32_t)(AVR_UART_FLAG_POLL_SLEEP | AVR_UART_FLAG_STDIO);
    avr_ioctl(r->avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    r->uart_in = avr_io_getirq(r->avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(r->avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
                            on_byte, r);
    avr_irq_register_notify(avr_io_getirq(r->avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
                            on_xon, r);
    avr_irq_register_notify(avr_io_getirq(r->avr, AVR_IOCTL_UART_GETIRQ('0'),
                            UART_IRQ_OUT_XOFF), on_xoff, r);

    r->phase = WAIT_READY;
    r->deadline = r->max_cycles;
    uint32_t steps = 0;
    while (!r->exit_code && r->phase != DONE) {
        int state = avr_run(r->avr);
        if ((++steps & 0xFFFF) == 0 && stuck_in_exit_loop(r->avr)) {
            fail(r, EXIT_CRASH, "firmware stuck in an endless loop with interrupts disabled "
                 "(main returned?) at pc 0x%04x while waiting for %s (vector %ld)", r->avr->pc, phase_name(r->phase), r->vec);
        } else if (state == cpu_Done || state == cpu_Crashed) {
            fail(r, EXIT_CRASH, "firmware stopped (%s) at pc 0x%04x after %llu cycles while "
                 "waiting for %s (vector %ld)", state == cpu_Done ? "halted" : "crashed",
                 r->avr->pc, (unsigned long long)r->avr->cycle, phase_name(r->phase), r->vec);
        } else if (r->avr->cycle > r->deadline) {
            fail(r, EXIT_TIMEOUT, "no reply from the device within %llu cycles while waiting "
                 "for %s (vector %ld): firmware hung or too slow",
                 (unsigned long long)r->max_cycles, phase_name(r->phase), r->vec);
        }
    }
    if (r->exit_code)
        return r->exit_code;

    uint8_t *trailer = r->results + (size_t)r->n * r->record_size;
    put_le(trailer, r->stack_bytes, 4);
    put_le(trailer + 4, r->avr->cycle, 8);
    FILE *out = fopen(argv[7], "wb");
    size_t total = (size_t)r->n * r->record_size + 12;
    uint8_t layers[2 + 8 * EB_MAX_LAYERS];
    put_le(layers, (uint64_t)r->n_layers, 2);
    for (long i = 0; i < r->n_layers; i++)
        put_le(layers + 2 + 8 * i, r->layer_sum[i], 8);
    size_t layers_len = 2 + 8 * (size_t)r->n_layers;
    if (!out || fwrite(r->results, 1, total, out) != total
        || fwrite(layers, 1, layers_len, out) != layers_len || fclose(out) != 0) {
        fprintf(stderr, "simrunner: cannot write %s\n", argv[7]);
        return EXIT_USAGE;
    }
    return 0;
}
