"""``python -m hearkit.training classify|ctc ...``: the ``hearkit train`` group, for torchrun.

    torchrun --nproc-per-node 2 -m hearkit.training classify --data DIR -o RUN_DIR
"""

from hearkit.commands.train import train

if __name__ == "__main__":
    train(prog_name="python -m hearkit.training")
