import platform

from servicekit.memory import return_freed_memory


def test_the_trim_threshold_is_fixed_where_the_c_library_is_glibc() -> None:
    # mallopt answers 1 when it took the setting; elsewhere there is nothing to call.
    assert return_freed_memory() is (platform.libc_ver()[0] == "glibc")
