/* edgebuild host harness: run model_run over a file of int8 input vectors.
 *
 * usage: harness INPUTS.bin OUTPUTS.bin
 * INPUTS.bin holds N * MODEL_INPUT_SIZE bytes; OUTPUTS.bin receives N * MODEL_OUTPUT_SIZE bytes.
 */
#include <stdint.h>
#include <stdio.h>

#include "edgebuild_model.h"

int main(int argc, char **argv)
{
    static int8_t input[MODEL_INPUT_SIZE];
    static int8_t output[MODEL_OUTPUT_SIZE];
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUTS.bin OUTPUTS.bin\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    FILE *out = fopen(argv[2], "wb");
    if (!in || !out) {
        perror("edgebuild host harness: cannot open file");
        return 2;
    }
    size_t got;
    while ((got = fread(input, 1, sizeof input, in)) == sizeof input) {
        model_run(input, output);
        if (fwrite(output, 1, sizeof output, out) != sizeof output) {
            perror("edgebuild host harness: write failed");
            return 2;
        }
    }
    if (got != 0) {
        fprintf(stderr, "input file size is not a multiple of %d bytes\n", MODEL_INPUT_SIZE);
        return 2;
    }
    return fclose(out) == 0 ? 0 : 2;
}
