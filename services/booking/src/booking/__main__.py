from booking.main import main

main()
