from lmassist.cli import main

main()
