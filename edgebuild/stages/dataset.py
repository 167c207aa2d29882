"""dataset: load, preprocess and split the recipe's dataset into data.npz."""

from __future__ import annotations

from edgebuild.stages.common import write_json


def run(ctx):
    from edgebuild.data import load_dataset, save_dataset

    spec = dict(ctx.params["spec"])
    ctx.progress(f"loading {spec['name']}")
    ds = load_dataset(spec)
    save_dataset(ds, ctx.out / "data.npz")
    write_json(ctx.out / "meta.json", ds.meta)
    ctx.log(f"{ds.meta.get('source', spec['name'])}: train {len(ds.y_train)}, val {len(ds.y_val)}, "
            f"test {len(ds.y_test)}")
