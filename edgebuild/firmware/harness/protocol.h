/* edgebuild device <-> host frame protocol (shared by the AVR harness and the simavr runner).
 *
 * Every frame starts with EB_SYNC0 EB_SYNC1, then a kind byte, a payload and a CRC-16
 * (reflected CCITT, poly 0x8408, init 0xFFFF, little endian) over kind + payload.
 *
 * device -> host  'R' ready : u16 input_size, u16 output_size, u16 marker_addr (data address of
 *                             the register the device writes EB_MARK_* to around model_run)
 * host -> device  'I' infer : input_size bytes (int8)
 * device -> host  'O' output: output_size bytes (int8), u32 cycles of model_run (Timer1)
 * device -> host  'E' error : (no payload) the host frame failed its checksum
 * host -> device  'S' stack : (no payload)
 * device -> host  'S' stack : u16 bytes of stack used so far (painted high-water mark)
 * host -> device  'L' layers: (no payload)
 * device -> host  'L' layers: u8 n, then n x u32: device timer ticks from the start of the last
 *                             measured call to the end of layer i (firmware built with
 *                             EB_LAYER_HOOK; any other answers the request with 'E')
 * All multi-byte integers are little endian.
 */
#ifndef EDGEBUILD_PROTOCOL_H
#define EDGEBUILD_PROTOCOL_H

#define EB_SYNC0 0xA5
#define EB_SYNC1 0x5A
#define EB_KIND_READY 'R'
#define EB_KIND_INFER 'I'
#define EB_KIND_OUTPUT 'O'
#define EB_KIND_ERROR 'E'
#define EB_KIND_STACK 'S'
#define EB_KIND_LAYERS 'L'
#define EB_MARK_START 1
#define EB_MARK_STOP 2
/* Generated model code may write EB_MARK_LAYER_BASE + i to the marker register after layer i
   (see EB_LAYER_DONE in edgebuild_platform.h); the runner sums the cycles per layer. */
#define EB_MARK_LAYER_BASE 16
#define EB_MAX_LAYERS 240
#define EB_CRC_INIT 0xFFFFu

#endif
