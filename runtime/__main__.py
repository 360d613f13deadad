"""``python -m hearkit ...``: the ``hearkit`` command, also for torchrun.

    torchrun --nproc-per-node 2 -m hearkit train classify --data DIR -o RUN_DIR
"""

from hearkit.cli import main

if __name__ == "__main__":
    main(prog_name="hearkit")
