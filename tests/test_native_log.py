"""The command's stderr filter drops TensorFlow's start-up notices and passes everything else on, in order."""
import os
import subprocess
import sys
import textwrap

from rnnbench.native_log import is_noise

SCRIPT = textwrap.dedent("""
    import os, sys, warnings
    from rnnbench.native_log import filter_native_stderr
    assert filter_native_stderr()
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
    os.write(2, b"I0000 00:00:1.2 4448 port.cc:153] oneDNN custom operations are on. You may see ...\\n")
    os.write(2, b"real native error one\\n")
    os.write(2, b"E0000 00:00:1.3 4448 cuda_executor.cc:1] failed call to cuInit: UNKNOWN ERROR (303)\\n")
    print("python stderr line", file=sys.stderr)
    warnings.warn("a real warning")
    os.write(2, b"partial line without newline")
    raise SystemExit(3)
""")


def run(script, **env):
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**{k: v for k, v in os.environ.items() if k != "RNNBENCH_TF_LOGS"}, **env})


def test_noise_is_dropped_and_the_rest_kept_in_order():
    result = run(SCRIPT)
    assert result.returncode == 3
    err = result.stderr
    assert "absl::InitializeLog" not in err and "oneDNN" not in err and "cuInit" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0] == "real native error one"
    assert lines[1] == "python stderr line"
    assert any("UserWarning: a real warning" in line for line in lines)
    assert err.rstrip().endswith("partial line without newline")


def test_the_filter_can_be_turned_off():
    result = run(SCRIPT.replace("assert filter_native_stderr()", "assert not filter_native_stderr()"),
                 RNNBENCH_TF_LOGS="1")
    assert "oneDNN custom operations" in result.stderr


def test_patterns_match_real_lines_only():
    assert is_noise("I0000 00:00:1796237517.399165 4448 cudart_stub.cc:31] Could not find cuda drivers on your "
                    "machine, GPU will not be used.")
    assert is_noise("E0000 00:00:1.0 1 graph.cc:1] NodeDef mentions attribute use_unbounded_threadpool which is "
                    "not in the op definition: Op<name=MapDataset ...>")
    assert not is_noise("rnnbench: error: no experiment 'x'")
    assert not is_noise("ValueError: Could not find the file data.csv")
