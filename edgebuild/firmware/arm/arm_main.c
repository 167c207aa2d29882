/* edgebuild device harness for ARM Cortex-M (see ../harness/protocol.h for the frame format).
 *
 * - The UART named by the target (edgebuild_board.h: driver and base address), polled.
 * - model_run is timed with SysTick on the processor clock plus a wrap counter, so the same
 *   firmware reports core cycles on a real board; the cost of an empty measurement is
 *   subtracted. In QEMU with -icount, SysTick ticks follow the instruction count exactly
 *   (edgebuild.sim.qemu converts them back to instructions).
 * - The start-up code paints free SRAM; the stack high-water mark is reported on request.
 * - The ready frame's marker address is 0: no marker register, the device count is used.
 */
#include <stdint.h>

#include "edgebuild_board.h"
#include "edgebuild_model.h"
#include "protocol.h"

#ifndef EDGEBUILD_BAUD
#error "EDGEBUILD_BAUD must be defined (the target's uart.baud)"
#endif
#ifndef F_CPU
#error "F_CPU must be defined (the target's f_cpu)"
#endif

#define EB_REG(addr) (*(volatile uint32_t *)(addr))

#if defined(EB_UART_STM32_USART)
/* STM32 USART (F2/F4 register layout). The harness sets no clocks or pins: QEMU does not model
 * RCC/GPIO; a real board also needs the USART clock and TX/RX alternate functions enabled, and
 * BRR assumes the USART kernel clock equals F_CPU. */
#define USART_SR EB_REG(EB_UART_BASE + 0x00u)
#define USART_DR EB_REG(EB_UART_BASE + 0x04u)
#define USART_BRR EB_REG(EB_UART_BASE + 0x08u)
#define USART_CR1 EB_REG(EB_UART_BASE + 0x0Cu)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_UE (1u << 13)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RE (1u << 2)

static void eb_uart_init(void)
{
    USART_BRR = (uint32_t)((F_CPU + EDGEBUILD_BAUD / 2) / EDGEBUILD_BAUD);
    USART_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
}

static uint8_t eb_uart_rx(void)
{
    while (!(USART_SR & USART_SR_RXNE)) {
    }
    return (uint8_t)USART_DR;
}

static void eb_uart_tx(uint8_t byte)
{
    while (!(USART_SR & USART_SR_TXE)) {
    }
    USART_DR = byte;
}
#else
#error "edgebuild_board.h names no UART driver this harness knows (uart.driver)"
#endif

/* SysTick and the System Control Block (architectural on every Cortex-M). */
#define SYST_CSR EB_REG(0xE000E010u)
#define SYST_RVR EB_REG(0xE000E014u)
#define SYST_CVR EB_REG(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)
#define SCB_ICSR EB_REG(0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_ICSR_PENDSTCLR (1u << 25)
#define EB_SYSTICK_TOP 0xFFFFFFu

typedef void (*eb_model_fn)(const int8_t *input, int8_t *output);

extern uint8_t _ebss[], _estack[];

static int8_t eb_input[MODEL_INPUT_SIZE];
static int8_t eb_output[MODEL_OUTPUT_SIZE];
static volatile uint32_t eb_wraps;
static uint16_t eb_tx_crc;

void SysTick_Handler(void)
{
    eb_wraps++;
}

/* CRC-16, reflected CCITT polynomial 0x8408 (avr-libc's _crc_ccitt_update). */
static uint16_t eb_crc_update(uint16_t crc, uint8_t data)
{
    crc ^= data;
    for (int i = 0; i < 8; i++) {
        crc = (crc & 1u) ? (uint16_t)((crc >> 1) ^ 0x8408u) : (uint16_t)(crc >> 1);
    }
    return crc;
}

static void eb_tx(uint8_t byte)
{
    eb_tx_crc = eb_crc_update(eb_tx_crc, byte);
    eb_uart_tx(byte);
}

static void eb_tx_u16(uint16_t v)
{
    eb_tx((uint8_t)v);
    eb_tx((uint8_t)(v >> 8));
}

static void eb_frame_begin(uint8_t kind)
{
    eb_tx(EB_SYNC0);
    eb_tx(EB_SYNC1);
    eb_tx_crc = EB_CRC_INIT;
    eb_tx(kind);
}

static void eb_frame_end(void)
{
    eb_tx_u16(eb_tx_crc);
}

static void __attribute__((noinline)) eb_empty(const int8_t *input, int8_t *output)
{
    (void)input;
    (void)output;
    __asm__ volatile("" ::: "memory");
}

/* SysTick ticks of one call of fn, including the fixed cost of the measurement itself. */
static uint32_t __attribute__((noinline)) eb_measure(eb_model_fn fn)
{
    SYST_CSR = 0;
    SYST_RVR = EB_SYSTICK_TOP;
    SYST_CVR = 0;
    SCB_ICSR = SCB_ICSR_PENDSTCLR;
    eb_wraps = 0;
    __asm__ volatile("cpsie i" ::: "memory");
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
    fn(eb_input, eb_output);
    __asm__ volatile("cpsid i" ::: "memory");
    uint32_t low = SYST_CVR;
    uint32_t wraps = eb_wraps;
    /* A wrap after cpsid but before the read is still pending (the counter restarted high). */
    if ((SCB_ICSR & SCB_ICSR_PENDSTSET) && low > EB_SYSTICK_TOP / 2) {
        wraps++;
    }
    SYST_CSR = 0;
    SCB_ICSR = SCB_ICSR_PENDSTCLR;
    return (wraps << 24) + (EB_SYSTICK_TOP - low);
}

static uint16_t eb_stack_used(void)
{
    const uint8_t *p = _ebss;
    while (p < _estack && *p == EB_STACK_PATTERN) {
        p++;
    }
    return (uint16_t)(_estack - p);
}

/* Wait for a sync sequence, then read one frame; returns its kind or EB_KIND_ERROR. */
static uint8_t eb_read_frame(void)
{
    uint8_t b;
    do {
        while (eb_uart_rx() != EB_SYNC0) {
        }
        do {
            b = eb_uart_rx();
        } while (b == EB_SYNC0);
    } while (b != EB_SYNC1);
    uint8_t kind = eb_uart_rx();
    uint16_t crc = eb_crc_update(EB_CRC_INIT, kind);
    if (kind == EB_KIND_INFER) {
        for (uint32_t i = 0; i < MODEL_INPUT_SIZE; i++) {
            b = eb_uart_rx();
            eb_input[i] = (int8_t)b;
            crc = eb_crc_update(crc, b);
        }
    } else if (kind != EB_KIND_STACK) {
        return EB_KIND_ERROR;
    }
    uint16_t got = eb_uart_rx();
    got |= (uint16_t)(eb_uart_rx() << 8);
    return got == crc ? kind : EB_KIND_ERROR;
}

int main(void)
{
    /* Forced through a volatile so neither call can be inlined or turned into a direct call. */
    static eb_model_fn volatile calls[2] = {eb_empty, model_run};

    eb_uart_init();
    eb_frame_begin(EB_KIND_READY);
    eb_tx_u16(MODEL_INPUT_SIZE);
    eb_tx_u16(MODEL_OUTPUT_SIZE);
    eb_tx_u16(0);
    eb_frame_end();
    uint32_t overhead = eb_measure(calls[0]);

    for (;;) {
        uint8_t kind = eb_read_frame();
        if (kind == EB_KIND_INFER) {
            uint32_t cycles = eb_measure(calls[1]) - overhead;
            eb_frame_begin(EB_KIND_OUTPUT);
            for (uint32_t i = 0; i < MODEL_OUTPUT_SIZE; i++) {
                eb_tx((uint8_t)eb_output[i]);
            }
            eb_tx_u16((uint16_t)cycles);
            eb_tx_u16((uint16_t)(cycles >> 16));
            eb_frame_end();
        } else if (kind == EB_KIND_STACK) {
            eb_frame_begin(EB_KIND_STACK);
            eb_tx_u16(eb_stack_used());
            eb_frame_end();
        } else {
            eb_frame_begin(EB_KIND_ERROR);
            eb_frame_end();
        }
    }
}
