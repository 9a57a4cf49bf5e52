from credits.main import main

main()
