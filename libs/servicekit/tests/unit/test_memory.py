import platform

from servicekit.memory import return_freed_memory


def test_the_allocator_thresholds_are_fixed_where_the_c_library_is_glibc() -> None:
    # mallopt answers 1 for each setting it took; elsewhere there is nothing to call.
    assert return_freed_memory() is (platform.libc_ver()[0] == "glibc")
