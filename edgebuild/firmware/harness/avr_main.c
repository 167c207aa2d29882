/* edgebuild device harness for AVR: the hooks of eb_frames.h (which speaks the protocol of
 * protocol.h) on UART0, Timer1 and GPIOR0.
 *
 * - UART0 at EDGEBUILD_BAUD (util/setbaud.h picks U2X when it is more exact), polled.
 * - model_run is timed with Timer1 at prescaler 1 plus an overflow counter, so the same
 *   firmware reports cycles on a real board; the cost of an empty measurement is subtracted.
 * - GPIOR0 is written EB_MARK_START/EB_MARK_STOP around each measured call so a simulator
 *   can count the same window with its own cycle counter.
 * - Free SRAM is painted in .init3; the stack high-water mark is reported on request.
 */
#include <stdint.h>
#include <avr/io.h>
#include <avr/interrupt.h>
#include <util/crc16.h>

#include "eb_frames.h"

#ifndef EDGEBUILD_BAUD
#error "EDGEBUILD_BAUD must be defined (the target's uart.baud)"
#endif
#define BAUD EDGEBUILD_BAUD
#include <util/setbaud.h>

#define EB_STACK_PATTERN 0xC5
#define EB_MARK GPIOR0

extern uint8_t __heap_start;

static volatile uint16_t eb_overflows;

/* Paint everything between the end of .bss/.noinit and RAMEND before the stack is used. */
void eb_paint_stack(void) __attribute__((naked, used, section(".init3")));
void eb_paint_stack(void)
{
    __asm__ volatile(
        "ldi r30, lo8(__heap_start)\n\t"
        "ldi r31, hi8(__heap_start)\n\t"
        "ldi r24, %[pat]\n\t"
        "ldi r26, lo8(%[end])\n\t"
        "ldi r27, hi8(%[end])\n"
        "1:\n\t"
        "st Z+, r24\n\t"
        "cp r30, r26\n\t"
        "cpc r31, r27\n\t"
        "brlo 1b\n\t"
        :
        : [pat] "M"(EB_STACK_PATTERN), [end] "i"(RAMEND + 1)
        : "r24", "r26", "r27", "r30", "r31", "memory");
}

ISR(TIMER1_OVF_vect)
{
    eb_overflows++;
}

static void eb_uart_init(void)
{
    UBRR0H = UBRRH_VALUE;
    UBRR0L = UBRRL_VALUE;
#if USE_2X
    UCSR0A = _BV(U2X0);
#else
    UCSR0A = 0;
#endif
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);
    UCSR0B = _BV(RXEN0) | _BV(TXEN0);
}

static uint8_t eb_uart_rx(void)
{
    while (!(UCSR0A & _BV(RXC0))) {
    }
    return UDR0;
}

static void eb_uart_tx(uint8_t byte)
{
    while (!(UCSR0A & _BV(UDRE0))) {
    }
    UDR0 = byte;
}

static uint16_t eb_crc_update(uint16_t crc, uint8_t data)
{
    return _crc_ccitt_update(crc, data);
}

/* Timer1 cycles of one call of fn, including the fixed cost of the measurement itself. */
static uint32_t __attribute__((noinline)) eb_measure(eb_model_fn fn)
{
    TCCR1A = 0;
    TCCR1B = 0;
    TCNT1 = 0;
    eb_overflows = 0;
    TIFR1 = _BV(TOV1);
    TIMSK1 = _BV(TOIE1);
    sei();
    TCCR1B = _BV(CS10);
    EB_MARK = EB_MARK_START;
    fn(eb_input, eb_output);
    EB_MARK = EB_MARK_STOP;
    cli();
    uint16_t low = TCNT1;
    uint32_t high = eb_overflows;
    /* An overflow that happened after cli() but before the read is still pending. */
    if ((TIFR1 & _BV(TOV1)) && low < 0x8000) {
        high++;
    }
    TCCR1B = 0;
    TIMSK1 = 0;
    TIFR1 = _BV(TOV1);
    return (high << 16) | low;
}

static uint16_t eb_stack_used(void)
{
    const uint8_t *p = &__heap_start;
    while (p <= (const uint8_t *)RAMEND && *p == EB_STACK_PATTERN) {
        p++;
    }
    return (uint16_t)(RAMEND + 1 - (uint16_t)p);
}

int main(void)
{
    eb_uart_init();
    eb_serve(_SFR_MEM_ADDR(EB_MARK));
}
