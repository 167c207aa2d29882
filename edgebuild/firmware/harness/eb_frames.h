/* edgebuild device harness, the architecture-independent part: the framed protocol of
 * protocol.h (frames out with their CRC, input frames in and checked) and the request loop.
 *
 * Included once, by each architecture's main file (avr_main.c, arm/arm_main.c), which defines
 * the hooks declared below and then calls eb_serve() from main().
 */
#ifndef EDGEBUILD_EB_FRAMES_H
#define EDGEBUILD_EB_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "edgebuild_model.h"
#include "protocol.h"

typedef void (*eb_model_fn)(const int8_t *input, int8_t *output);

/* Hooks each architecture's main file defines. */
/* Block until the UART has received a byte; return it. */
static uint8_t eb_uart_rx(void);
/* Block until the UART can take a byte; send it. */
static void eb_uart_tx(uint8_t byte);
/* One step of the frames' CRC-16 (reflected CCITT, poly 0x8408). */
static uint16_t eb_crc_update(uint16_t crc, uint8_t data);
/* Device cycles of one call fn(eb_input, eb_output), including the measurement's fixed cost
 * (never inlined, so that the empty call and model_run are measured by the same code). */
static uint32_t __attribute__((noinline)) eb_measure(eb_model_fn fn);
/* Bytes of stack used so far (painted high-water mark). */
static uint16_t eb_stack_used(void);

#if defined(EB_LAYER_HOOK)
#ifndef MODEL_LAYERS
#define MODEL_LAYERS 1   /* a hand-written model header that does not say how many layers it marks */
#endif
/* Per-layer timing (protocol.h, 'L'): the architecture's EB_LAYER_HOOK stores, after layer i of
 * the measured call, its timer ticks since the measurement started; eb_measure resets the count. */
static uint32_t eb_layer_ticks[MODEL_LAYERS];
static volatile uint8_t eb_layers;
#endif

static int8_t eb_input[MODEL_INPUT_SIZE];
static int8_t eb_output[MODEL_OUTPUT_SIZE];
static uint16_t eb_tx_crc;

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

static void eb_tx_u32(uint32_t v)
{
    eb_tx_u16((uint16_t)v);
    eb_tx_u16((uint16_t)(v >> 16));
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
        for (size_t i = 0; i < MODEL_INPUT_SIZE; i++) {
            b = eb_uart_rx();
            eb_input[i] = (int8_t)b;
            crc = eb_crc_update(crc, b);
        }
    } else if (kind != EB_KIND_STACK
#if defined(EB_LAYER_HOOK)
               && kind != EB_KIND_LAYERS
#endif
    ) {
        return EB_KIND_ERROR;
    }
    uint16_t got = eb_uart_rx();
    got |= (uint16_t)eb_uart_rx() << 8;
    return got == crc ? kind : EB_KIND_ERROR;
}

/* The empty call whose measured cost is subtracted from model_run's. */
static void __attribute__((noinline)) eb_empty(const int8_t *input, int8_t *output)
{
    (void)input;
    (void)output;
    __asm__ volatile("" ::: "memory");
}

/* Send the ready frame (marker_addr: see protocol.h), then answer requests forever. */
static void __attribute__((noreturn)) eb_serve(uint16_t marker_addr)
{
    /* Forced through a volatile so neither call can be inlined or turned into a direct call. */
    static eb_model_fn volatile calls[2] = {eb_empty, model_run};

    eb_frame_begin(EB_KIND_READY);
    eb_tx_u16(MODEL_INPUT_SIZE);
    eb_tx_u16(MODEL_OUTPUT_SIZE);
    eb_tx_u16(marker_addr);
    eb_frame_end();
    uint32_t overhead = eb_measure(calls[0]);

    for (;;) {
        uint8_t kind = eb_read_frame();
        if (kind == EB_KIND_INFER) {
            uint32_t cycles = eb_measure(calls[1]) - overhead;
            eb_frame_begin(EB_KIND_OUTPUT);
            for (size_t i = 0; i < MODEL_OUTPUT_SIZE; i++) {
                eb_tx((uint8_t)eb_output[i]);
            }
            eb_tx_u32(cycles);
            eb_frame_end();
        } else if (kind == EB_KIND_STACK) {
            eb_frame_begin(EB_KIND_STACK);
            eb_tx_u16(eb_stack_used());
            eb_frame_end();
#if defined(EB_LAYER_HOOK)
        } else if (kind == EB_KIND_LAYERS) {
            uint8_t n = eb_layers;
            eb_frame_begin(EB_KIND_LAYERS);
            eb_tx(n);
            for (uint8_t i = 0; i < n; i++) {
                eb_tx_u32(eb_layer_ticks[i]);
            }
            eb_frame_end();
#endif
        } else {
            eb_frame_begin(EB_KIND_ERROR);
            eb_frame_end();
        }
    }
}

#endif
