/// The built-in example model: a tiny root filesystem that uses every feature of the format
/// (every file type, hard links, inline and external files, fs-verity digests, xattrs, a
/// whiteout), in canonical form. `/etc/motd` is 100000 bytes of `i mod 251` and `/usr/bin/sh`
/// 4096 zero bytes; their digests are those contents' fs-verity digests.
enum ExampleModel {
    static let dump = """
        / 4096 40755 4 0 0 0 1700000000.0 - - - security.selinux=system_u:object_r:root_t:s0\\x00
        /dev-null 0 20666 1 0 0 259 1700000000.0 - - -
        /disk 0 60660 1 0 6 2049 1700000000.0 - - -
        /etc 4096 40755 2 0 0 0 1700000000.0 - - -
        /etc/hostname 8 100644 1 0 0 0 1700000000.0 - example\\n -
        /etc/motd 100000 100644 1 0 0 0 1700000000.123456789 f5/82acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b - f582acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b user.comment=hello\\x20world
        /etc/removed 0 20000 1 0 0 0 1700000000.0 - - -
        /fifo 0 10644 1 0 0 0 1700000000.0 - - -
        /socket 0 140755 1 0 0 0 1700000000.0 - - -
        /usr 4096 40755 3 0 0 0 1700000000.0 - - - trusted.overlay.opaque=y
        /usr/bin 4096 40755 2 0 0 0 1700000000.0 - - -
        /usr/bin/sh 4096 100755 2 0 0 0 1700000000.0 ba/bc284ee4ffe7f449377fbf6692715b43aec7bc39c094a95878904d34bac97e - babc284ee4ffe7f449377fbf6692715b43aec7bc39c094a95878904d34bac97e security.capability=\\x01\\x00\\x00\\x02
        /usr/bin/sh-link 4096 @100755 2 0 0 0 1700000000.0 /usr/bin/sh - babc284ee4ffe7f449377fbf6692715b43aec7bc39c094a95878904d34bac97e security.capability=\\x01\\x00\\x00\\x02
        /usr/bin/true 0 100755 1 0 0 0 1700000000.0 - - -
        /usr/lib 3 120777 1 0 0 0 1700000000.0 lib - -

        """
}
