/* edgebuild device harness for ARM Cortex-M: the hooks of ../harness/eb_frames.h (which speaks
 * the protocol of ../harness/protocol.h) on the target's UART and SysTick.
 *
 * - The UART named by the target (edgebuild_board.h: driver and base address), polled.
 * - model_run is timed with SysTick on the processor clock plus a wrap counter, so the same
 *   firmware reports core cycles on a real board; the cost of an empty measurement is
 *   subtracted. In QEMU with -icount, SysTick ticks follow the instruction count exactly
 *   (edgebuild.sim.qemu converts them back to instructions).
 * - The start-up code paints free SRAM; the stack high-water mark is reported on request.
 * - The ready frame's marker address is 0: no marker register, the device count is used.
 * - Built with EB_LAYER_HOOK=eb_layer_done (the target's toolchain.defines), the generated model
 *   calls eb_layer_done(i) after layer i; it stores the SysTick ticks since the measurement
 *   started, which the host reads with an 'L' request (protocol.h) after each inference.
 */
#include <stdint.h>

#include "edgebuild_board.h"
#include "eb_frames.h"

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

extern uint8_t _ebss[], _estack[];

static volatile uint32_t eb_wraps;

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

#if defined(EB_LAYER_HOOK)
/* Called by model_run after layer i (edgebuild_platform.h): SysTick ticks since eb_measure
 * started the counter. The wrap count and the counter are read until a wrap did not come between. */
void EB_LAYER_HOOK(uint8_t layer)
{
    uint32_t wraps, low;
    do {
        wraps = eb_wraps;
        low = SYST_CVR;
    } while (wraps != eb_wraps);
    if (layer < MODEL_LAYERS) {
        eb_layer_ticks[layer] = (wraps << 24) + (EB_SYSTICK_TOP - low);
        eb_layers = (uint8_t)(layer + 1);
    }
}
#endif

/* SysTick ticks of one call of fn, including the fixed cost of the measurement itself. */
static uint32_t __attribute__((noinline)) eb_measure(eb_model_fn fn)
{
#if defined(EB_LAYER_HOOK)
    eb_layers = 0;
#endif
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

int main(void)
{
    eb_uart_init();
    eb_serve(0);
}
