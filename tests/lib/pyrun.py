#!/usr/bin/env python3
"""Run the test_* functions of one integration file; print PASS/FAIL/SKIP lines.

A test skips itself by raising lstest.Skip("reason"). Output of a failing test
(its traceback and the last lines of the agent's log it attached) is printed
indented under the FAIL line.
"""
import importlib.util, os, sys, time, traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lstest  # noqa: E402

path = sys.argv[1]
pattern = sys.argv[2] if len(sys.argv) > 2 else ""
spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
names = [n for n in dir(mod) if n.startswith("test_") and callable(getattr(mod, n))]
names.sort(key=lambda n: getattr(mod, n).__code__.co_firstlineno)
rc = 0
try:
    for n in names:
        if pattern and pattern not in n:
            continue
        t0 = time.time()
        try:
            getattr(mod, n)()
            print(f"PASS {n} ({time.time()-t0:.1f}s)", flush=True)
        except lstest.Skip as e:
            print(f"SKIP {n}: {e}", flush=True)
        except BaseException as e:  # noqa: BLE001 - report everything, go on
            rc = 1
            print(f"FAIL {n}: {type(e).__name__}: {str(e)[:300]}", flush=True)
            for line in traceback.format_exc().splitlines()[-25:]:
                print("    " + line, flush=True)
            if isinstance(e, KeyboardInterrupt):
                break
        finally:
            lstest.cleanup()
finally:
    lstest.cleanup(final=True)
sys.exit(rc)
