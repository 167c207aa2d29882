"""The pipeline's actions: thin glue between the engine and the libraries.

Each module exposes `run(ctx)`: it reads only ctx.params, ctx.files and ctx.inputs, and writes only
into ctx.out. That is what makes the content hash honest (see rules/pipeline.yaml).
"""
