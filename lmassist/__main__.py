from lmassist.launch import main

main()
