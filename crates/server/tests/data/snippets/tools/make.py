"""Writes the short-snippet retrieval set (corpus.jsonl, queries.jsonl, qrels.tsv) beside
this folder: eight small businesses, one tenant each, whose knowledge is short FAQ answers
and customer reviews, and questions written as customers write them (paraphrases that avoid
the snippets' words, fragments, typos). Written for this project; no third-party text.
Run: python3 tools/make.py (from the folder above)."""
import json, os

# business -> list of (snippet id suffix, text); queries -> (text, [relevant suffixes])
B = {
 "bikeshop": ([
  ("f1", "Repairs: we service any brand of bicycle. A standard tune-up costs £45 and is usually ready the next working day."),
  ("f2", "Returns: unused accessories can be brought back within 30 days with the receipt."),
  ("f3", "We are open Tuesday to Saturday, 9:00 to 18:00. Closed Sundays and Mondays."),
  ("f4", "Electric bikes carry a two-year warranty on the motor and battery."),
  ("f5", "Bike hire is £25 per day, helmet and lock included. A deposit of £100 is held on your card."),
  ("r1", "Dropped my commuter off with a buckled wheel in the morning and it was true again by lunchtime. Friendly staff."),
  ("r2", "Bought an e-bike here last spring; when the battery started failing they swapped it without any fuss."),
  ("r3", "Parking outside is tricky but there is a public car park two minutes away on Mill Lane."),
  ("f6", "We deliver new bikes within 10 miles of the shop for free, fully assembled."),
  ("r4", "Rented two bikes for a weekend along the canal. Great condition, easy pick-up."),
 ], [
  ("how much to get my bike fixed up", ["f1"]),
  ("can i rent a bicycle for the day", ["f5", "r4"]),
  ("what if the ebike battery dies after a year", ["f4", "r2"]),
  ("where do i leave my car", ["r3"]),
  ("are you open on sunday", ["f3"]),
 ]),
 "bakery": ([
  ("f1", "Custom celebration cakes need 72 hours' notice. Prices start at £35 for a cake serving 12."),
  ("f2", "All our sourdough is made with organic flour and fermented for 36 hours."),
  ("f3", "We have gluten-free brownies and a gluten-free loaf every Friday; they are baked in a kitchen that also handles wheat."),
  ("f4", "Orders over £20 can be delivered on Saturday mornings within the city."),
  ("f5", "Our café seats 20 and the Wi-Fi password is on the board by the till."),
  ("r1", "The cinnamon buns sell out by ten so go early!"),
  ("r2", "Ordered a birthday cake with three days' notice and it was beautiful, my daughter loved it."),
  ("r3", "Lovely place to work from for a couple of hours, good coffee and internet."),
  ("f6", "Leftover bread is given to the food bank every evening."),
  ("r4", "I'm coeliac and was told honestly that the gluten-free items may contain traces of wheat. Appreciated the honesty."),
 ], [
  ("how far ahead do i need to order a birthday cake", ["f1", "r2"]),
  ("safe for someone with celiac disease?", ["f3", "r4"]),
  ("can i bring my laptop and work there", ["f5", "r3"]),
  ("do you bring orders to my house", ["f4"]),
  ("when should i come to get cinnamon rolls", ["r1"]),
 ]),
 "dentist": ([
  ("f1", "New patients can book a check-up and clean for £60; X-rays are £25 extra if needed."),
  ("f2", "For a dental emergency outside opening hours call 0161 555 0199 and follow the recorded instructions."),
  ("f3", "We offer payment plans for implants and orthodontics over 12 months at 0% interest."),
  ("f4", "Please cancel at least 24 hours before your appointment, otherwise a £20 fee applies."),
  ("f5", "Children under 18 are seen free of charge under the NHS."),
  ("r1", "I'm terrified of dentists and Dr Shah was incredibly patient, explained everything before starting."),
  ("r2", "Chipped a tooth on a Saturday night and got seen first thing Monday after calling the out-of-hours line."),
  ("r3", "Paid for my braces in monthly instalments, which made it affordable."),
  ("f6", "Teeth whitening is £250 for a home kit with custom trays."),
  ("r4", "Reception was quick to rebook me when I had to move my appointment."),
 ], [
  ("cost for a first visit", ["f1"]),
  ("toothache in the middle of the night what do i do", ["f2", "r2"]),
  ("can i spread the cost of braces", ["f3", "r3"]),
  ("what happens if i miss my appointment", ["f4"]),
  ("good for nervous patients?", ["r1"]),
 ]),
 "hotel": ([
  ("f1", "Check-in is from 3 pm and check-out by 11 am. Early check-in can be requested at no charge, subject to availability."),
  ("f2", "Dogs are welcome in our ground-floor rooms for £15 per night."),
  ("f3", "Breakfast is served from 7 to 10 in the conservatory and costs £14 per person."),
  ("f4", "Parking is free for guests; we have 12 spaces and one electric car charger."),
  ("f5", "Free cancellation up to 48 hours before arrival."),
  ("r1", "Brought our spaniel and the staff had a bowl and treats waiting in the room."),
  ("r2", "Plugged in my EV overnight in the car park, really handy."),
  ("r3", "The full English in the morning was excellent."),
  ("f6", "The nearest train station is 10 minutes' walk; we can arrange a taxi from the airport for £40."),
  ("r4", "Asked to arrive at noon and our room was ready, lovely touch."),
 ], [
  ("can i bring my pet", ["f2", "r1"]),
  ("is there somewhere to charge my tesla", ["f4", "r2"]),
  ("what time can i get into the room", ["f1", "r4"]),
  ("how do i get there from the airport", ["f6"]),
  ("refund if my plans change", ["f5"]),
 ]),
 "plumber": ([
  ("f1", "Our call-out fee is £60, which includes the first hour of labour."),
  ("f2", "We cover emergency leaks 24 hours a day, 7 days a week, across Greater Manchester."),
  ("f3", "Boiler servicing is £85 and we are Gas Safe registered."),
  ("f4", "All work is guaranteed for 12 months."),
  ("f5", "We accept card, bank transfer and cash; invoices are emailed the same day."),
  ("r1", "Burst pipe at 2 am and someone was here within the hour. Saved my kitchen."),
  ("r2", "Fitted a new shower, tidy work and cleaned up after themselves."),
  ("r3", "Annual boiler check done quickly, certificate emailed straight after."),
  ("f6", "We do not install solar panels or heat pumps."),
  ("r4", "Reasonable price, the first hour covered the whole job."),
 ], [
  ("water pouring through the ceiling at night can someone come", ["f2", "r1"]),
  ("how much just to come out", ["f1", "r4"]),
  ("yearly gas boiler check price", ["f3", "r3"]),
  ("do you put in heat pumps", ["f6"]),
  ("can i pay by bank", ["f5"]),
 ]),
 "gym": ([
  ("f1", "Monthly membership is £29 with no joining fee; you can cancel any time with 30 days' notice."),
  ("f2", "The gym is open 24/7 for members; staffed hours are 7 am to 9 pm."),
  ("f3", "Towels are not provided, so please bring your own. Lockers need a £1 coin or your own padlock."),
  ("f4", "Personal training sessions are £35 an hour, or £150 for five."),
  ("f5", "Students get 20% off with a valid student card."),
  ("r1", "Love that I can train at 5 am before work, never crowded then."),
  ("r2", "Forgot a padlock the first time, so bring one!"),
  ("r3", "Quitting was easy, just gave a month's notice at reception."),
  ("f6", "Classes include spin, yoga and HIIT; book in the app up to 7 days ahead."),
  ("r4", "My trainer built me a plan for my knee rehab, really knowledgeable."),
 ], [
  ("can i go really early in the morning", ["f2", "r1"]),
  ("how do i stop my membership", ["f1", "r3"]),
  ("discount for uni students", ["f5"]),
  ("do i need to bring a lock", ["f3", "r2"]),
  ("reserve a yoga class", ["f6"]),
 ]),
 "florist": ([
  ("f1", "Same-day delivery is available for orders placed before 1 pm, Monday to Saturday."),
  ("f2", "Funeral wreaths and tributes can be delivered directly to the funeral director."),
  ("f3", "Wedding flowers: we offer a free consultation and need at least three months' notice."),
  ("f4", "Bouquets start at £30; delivery within 5 miles is £6."),
  ("f5", "Flowers that arrive damaged are replaced free if you send a photo within 24 hours."),
  ("r1", "Ordered at noon for my mum's birthday and they arrived that afternoon."),
  ("r2", "They did all the flowers for our wedding, from bouquets to table centres. Stunning."),
  ("r3", "The roses were squashed on arrival but they sent a new bunch the same day after I emailed a picture."),
  ("f6", "We cannot deliver on Sundays or bank holidays."),
  ("r4", "Sent a sympathy arrangement to the chapel, handled with real care."),
 ], [
  ("if i order at lunch can it arrive today", ["f1", "r1"]),
  ("flowers for a funeral", ["f2", "r4"]),
  ("the bouquet came broken", ["f5", "r3"]),
  ("sunday delivery?", ["f6"]),
  ("how early should i book for my wedding", ["f3", "r2"]),
 ]),
 "vet": ([
  ("f1", "A standard consultation costs £48. Vaccination boosters are £55 including a health check."),
  ("f2", "Out of hours, emergencies are seen by our partner clinic on Oak Road; call our number and you will be transferred."),
  ("f3", "We offer a pet health plan at £14 a month covering vaccinations, flea and worm treatment."),
  ("f4", "Neutering for cats costs £90 for males and £120 for females."),
  ("f5", "Please bring cats in a secure carrier and dogs on a lead."),
  ("r1", "Our kitten had her jabs and the nurse was so gentle."),
  ("r2", "Dog ate chocolate late on a Sunday and the emergency clinic they sent us to was brilliant."),
  ("r3", "The monthly plan has saved us a fortune on flea treatment."),
  ("f6", "We do not treat horses or farm animals."),
  ("r4", "Had our tomcat snipped, quick recovery and a fair price."),
 ], [
  ("my dog swallowed something bad at night", ["f2", "r2"]),
  ("price to get my cat spayed", ["f4"]),
  ("puppy injections cost", ["f1", "r1"]),
  ("do you look after horses", ["f6"]),
  ("is there a monthly payment option for flea stuff", ["f3", "r3"]),
 ]),
}

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(here, "corpus.jsonl"), "w") as c, \
     open(os.path.join(here, "queries.jsonl"), "w") as q, \
     open(os.path.join(here, "qrels.tsv"), "w") as r:
    r.write("query-id\tcorpus-id\tscore\n")
    for name, (snippets, queries) in B.items():
        for sid, text in snippets:
            c.write(json.dumps({"_id": f"{name}-{sid}", "title": "", "text": text,
                                "metadata": {"tenant": name}}) + "\n")
        for i, (text, rel) in enumerate(queries):
            qid = f"{name}-q{i + 1}"
            q.write(json.dumps({"_id": qid, "text": text, "metadata": {"tenants": [name]}}) + "\n")
            for sid in rel:
                r.write(f"{qid}\t{name}-{sid}\t1\n")
