from keyrot.cli import main

main()
