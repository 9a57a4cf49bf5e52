"""What the platform's tests share, kept out of the services' runtime packages."""
