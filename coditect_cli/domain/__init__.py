"""The domain: manifest model, validation rules, plans and reports. Pure where possible; never prints."""
