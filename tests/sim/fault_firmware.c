/* Misbehaving AVR firmware for the simavr runner's error paths. FAULT selects the fault:
 * 1 ready frame with a wrong CRC, 2 never answers (busy loop, interrupts on), 3 sleeps with interrupts off (halt),
 * 4 valid ready frame, then rejects every host frame with an 'E' frame,
 * 5 valid ready frame, then replies to an infer frame with garbage before the sync bytes,
 * 6 returns from main (avr-libc's exit loop). */
#include <stdint.h>
#include <avr/io.h>
#include <avr/interrupt.h>
#include <avr/sleep.h>
#include <util/crc16.h>

static void tx(uint8_t b)
{
    while (!(UCSR0A & _BV(UDRE0))) {
    }
    UDR0 = b;
}

static void frame(uint8_t kind, const uint8_t *payload, uint8_t len, uint16_t crc_xor)
{
    uint16_t crc = _crc_ccitt_update(0xFFFF, kind);
    tx(0xA5);
    tx(0x5A);
    tx(kind);
    for (uint8_t i = 0; i < len; i++) {
        tx(payload[i]);
        crc = _crc_ccitt_update(crc, payload[i]);
    }
    crc ^= crc_xor;
    tx((uint8_t)crc);
    tx((uint8_t)(crc >> 8));
}

static uint8_t rx(void)
{
    while (!(UCSR0A & _BV(RXC0))) {
    }
    return UDR0;
}

int main(void)
{
    /* input 4 bytes, output 2 bytes, marker GPIOR0 */
    static const uint8_t ready[6] = {4, 0, 2, 0, (uint8_t)_SFR_MEM_ADDR(GPIOR0), 0};
    UBRR0 = 0;
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);
    UCSR0B = _BV(RXEN0) | _BV(TXEN0);
    if (FAULT == 2) {
        sei();
        for (;;) {
        }
    }
    if (FAULT == 6) {
        return 0;
    }
    if (FAULT == 3) {
        cli();
        sleep_enable();
        sleep_cpu();
    }
    frame('R', ready, 6, FAULT == 1 ? 0x0100 : 0);
    for (;;) {
        rx();
        if (FAULT == 4) {
            frame('E', 0, 0, 0);
        } else {
            tx(0x00);
        }
    }
}
